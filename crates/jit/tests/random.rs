//! Seeded random-program differential test: ~1000 generated straight-line SOMA programs over
//! every opcode and the core builtins run on the reference executor and under the JIT
//! (threshold 0, and threshold 1 for every other program); AL, output and error must agree.
//!
//! Termination by construction: block bodies only execute builtins, nested `{ .. } >chain`
//! / `>{ .. }` forms, and end with an Int literal (so a chain stops after one round); the
//! only loops are counting loops on `cnt`, a path nothing else names; `+` is only ever
//! rebound to blocks that do not execute `+`.

mod common;
use common::{run_on, Outcome, Runner, Tier};

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
        xs[self.below(xs.len() as u64) as usize]
    }
}

const STORE_PATHS: &[&str] = &["a", "b", "c", "a.x", "b.y", "a.x.z", "c.w"];
const REG_PATHS: &[&str] = &["_.r", "_.s", "_.r.t", "_.s.u"];
const BUILTINS: &[&str] = &[
    ">+", ">-", ">*", ">/", ">%", "><", ">+", ">-", ">*", "><", ">choose", ">choose", ">isVoid",
    ">isNil", ">toString", ">concat", ">print", ">toInt", ">debug.type",
];
const INTS: &[&str] = &[
    "0", "1", "2", "3", "-1", "-7", "7", "10", "100", "140737488355327", "-140737488355328",
    "140737488355328", "9223372036854775807", "100000000000000000000", "-99999999999999999999",
];

fn literal(r: &mut Rng) -> String {
    match r.below(6) {
        0 => format!("({})", r.pick(&["s", "abc", "", "12", "x y"])),
        1 => r.pick(&["True", "False", "Nil", "Void"]).to_string(),
        _ => r.pick(INTS).to_string(),
    }
}

/// A statement for a block body (depth >= 1) or the program (depth 0).
fn stmt(r: &mut Rng, depth: u32, out: &mut Vec<String>) {
    match r.below(if depth < 2 { 20 } else { 17 }) {
        0..=3 => out.push(literal(r)),
        _ if r.below(3) == 0 => out.push(r.pick(INTS).to_string()),
        4..=6 => out.push(r.pick(BUILTINS).to_string()),
        7 => out.push(r.pick(STORE_PATHS).to_string()),
        8 => out.push(format!("!{}", r.pick(STORE_PATHS))),
        9 => out.push(format!("{}.", r.pick(STORE_PATHS))),
        10 => out.push(format!("!{}.", r.pick(STORE_PATHS))),
        11 => out.push(r.pick(REG_PATHS).to_string()),
        12 => out.push(format!("!{}", r.pick(REG_PATHS))),
        13 => out.push(format!("{}.", r.pick(REG_PATHS))),
        14 => out.push(format!("!{}.", r.pick(REG_PATHS))),
        15 => out.push(r.pick(&["_.", "!_.", "_", "+", "choose"]).to_string()),
        16 => {
            // Guarded-builtin fast paths want operands on the virtual stack.
            out.push(r.pick(INTS).to_string());
            out.push(r.pick(INTS).to_string());
            out.push(r.pick(&[">+", ">-", ">*", ">/", ">%", "><"]).to_string());
        }
        _ => {
            let body = block(r, depth + 1);
            match r.below(3) {
                0 => out.push(format!("{body} >chain")),
                1 => out.push(format!(">{body}")),
                _ => out.push(body),
            }
        }
    }
}

fn block(r: &mut Rng, depth: u32) -> String {
    let mut out = vec!["{".to_string()];
    if r.below(2) == 0 {
        out.push("5 !_.r 6 !_.s 7 !_.r.t".to_string());
    }
    for _ in 0..r.below(8) {
        stmt(r, depth, &mut out);
    }
    out.push(r.pick(INTS).to_string());
    out.push("}".to_string());
    out.join(" ")
}

fn program(r: &mut Rng) -> String {
    let mut out = vec![
        "0 !a 1 !b 2 !c 3 !a.x 4 !b.y 5 !a.x.z 6 !c.w 7 !_.r 8 !_.s 9 !_.r.t 10 !_.s.u".to_string(),
        "1 2 3 4 5 6".to_string(),
    ];
    for _ in 0..(1 + r.below(30)) {
        match r.below(30) {
            0 => out.push("{ >- } !+".to_string()),
            1 => out.push("{ >* } !+".to_string()),
            2 => {
                let b = block(r, 1);
                out.push(format!("{b} !f"));
            }
            3 => out.push(">f".to_string()),
            4 => out.push(">_.r".to_string()),
            5 => out.push(format!(">{}", r.pick(STORE_PATHS))),
            6 => out.push(">chain".to_string()),
            7 | 8 => {
                // A bounded counting loop around a random body (nothing else can reach `cnt`).
                let mut body = Vec::new();
                for _ in 0..r.below(6) {
                    stmt(r, 1, &mut body);
                }
                out.push(format!(
                    "{} !cnt {{ {} cnt 1 >- !cnt 0 cnt >< >block Nil >choose }} >chain",
                    1 + r.below(12),
                    body.join(" ")
                ));
            }
            _ => stmt(r, 0, &mut out),
        }
    }
    // Split across lines so positions have lines and columns.
    out.chunks(6).map(|c| c.join(" ")).collect::<Vec<_>>().join("\n")
}

fn run_small_depth(tier: Tier, src: &str) -> Outcome {
    let mut r = Runner::new(tier);
    r.vm.set_max_depth(200);
    let res = r.run_src(src);
    assert_eq!(r.vm.shadow_depth(), 0, "shadow slots leaked:\n{src}");
    assert_eq!(r.vm.depth(), 0, "frames leaked:\n{src}");
    r.outcome(res)
}

#[test]
fn random_programs_agree() {
    let seed: u64 = std::env::var("SOMA_JIT_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5EED_50FA);
    let n: u64 = std::env::var("SOMA_JIT_PROGRAMS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1000);
    let mut rng = Rng(seed | 1);
    let mut errors = 0;
    for i in 0..n {
        let src = program(&mut rng);
        let reference = run_small_depth(Tier::Executor, &src);
        let jit = run_small_depth(Tier::Jit(0), &src);
        assert_eq!(jit, reference, "program {i} (seed {seed:#x}), threshold 0:\n{src}");
        if i % 2 == 0 {
            let jit1 = run_small_depth(Tier::Jit(1), &src);
            assert_eq!(jit1, reference, "program {i} (seed {seed:#x}), threshold 1:\n{src}");
        }
        errors += reference.err.is_some() as u32;
    }
    eprintln!("{n} programs, {errors} ended in an error");
    // The generator must exercise both successful runs and errors.
    assert!(errors > 0 && (errors as u64) < n, "{errors} errors in {n} programs");
}

#[test]
fn generator_is_deterministic() {
    let a = program(&mut Rng(7));
    let b = program(&mut Rng(7));
    assert_eq!(a, b);
    let _ = run_on;
}
