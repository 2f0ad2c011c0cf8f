//! The differential runner for every architecture: each test case of tests/soma (the corpus,
//! `fixtures/make_corpus.py`), the stdlib's own program and the benchmark programs of
//! benches/bytecode run on the reference executor and under the JIT at threshold 0 (every
//! Code compiled before its first run), and the AL, the output and the error (class, message,
//! position, source module) must agree. Then every Code of the stdlib is compiled.
//!
//! `cargo test` runs it on the host; scripts/aarch64.sh cross-builds it and runs it under
//! qemu-aarch64, which is why it is a `harness = false` binary that does all its work on one
//! thread: thread creation hangs under qemu-user on our machines (see `common::on_big_stack`
//! for the one thread it starts where it can).
//!
//! Output: one line per difference, then counts and a last line `ARCH: N passed, M failed`;
//! the exit status is 1 on any difference. With `SOMA_DIFF_OUTCOMES=FILE` it also writes each
//! source's outcome to FILE, one line each, so that two architectures' runs can be compared
//! line by line (scripts/aarch64.sh does that: it catches a bug shared by both tiers of one
//! architecture, e.g. in the runtime).

mod common;
use common::{corpus_cases, leftovers, on_big_stack, run_case, CorpusCase, Outcome, Tier};
use soma_runtime::Vm;
use std::collections::BTreeSet;
use std::fmt::Write as _;

/// The benchmark programs, at their checked-in sizes (each runs in well under a second
/// natively, a few seconds under qemu).
const PROGRAMS: &[(&str, &[u8])] = &[
    ("chain_loop", include_bytes!("../../../benches/bytecode/chain_loop.bc")),
    ("collatz", include_bytes!("../../../benches/bytecode/collatz.bc")),
    ("dict_workload", include_bytes!("../../../benches/bytecode/dict_workload.bc")),
    ("fib", include_bytes!("../../../benches/bytecode/fib.bc")),
    ("list_map_fold", include_bytes!("../../../benches/bytecode/list_map_fold.bc")),
    ("string_build", include_bytes!("../../../benches/bytecode/string_build.bc")),
];

#[derive(Default)]
struct Tally {
    passed: usize,
    failed: usize,
    /// Blocks compiled by the JIT runs (each run compiles its own; two runs per source, the
    /// baseline tier's and the optimizing tier's).
    compiled: u64,
    /// Of those, compiled as speculative code.
    speculative: u64,
    /// Blocks whose native code ran (compiled, then executed at least once). Bodies inlined
    /// into a caller run inside the caller's code and are not counted again.
    ran_native: usize,
    /// Indices of the stdlib Codes that ran as native code in some run.
    stdlib_ran: BTreeSet<u32>,
    /// Each source's outcome, one line each (for `SOMA_DIFF_OUTCOMES`).
    outcomes: String,
}

/// The Code indices of module `id` whose blocks were compiled and then ran.
fn ran_native(vm: &Vm, id: u32) -> Vec<u32> {
    let module = vm.module(id).expect("loaded");
    let mut out = Vec::new();
    for (i, &b) in module.blocks.iter().enumerate() {
        let obj = vm.block_obj(b).expect("a Code's block");
        if obj.native_entry.get().is_some() && obj.exec_count.get() > 0 {
            out.push(i as u32);
        }
    }
    out
}

/// Compare one source on the baseline tier and on the optimizing tier (everything compiled
/// before it runs, speculative wherever a Block allows it); record the result in `t`.
fn check(t: &mut Tally, case: &CorpusCase) {
    let (reference, _, _, _) = run_case(Tier::Executor, case);
    let mut problems = Vec::new();
    for tier in [Tier::Jit(0), Tier::Optimizing(0, 0)] {
        let (jit, mut r, stdlib, id) = run_case(tier, case);
        if jit != reference {
            problems.push(format!("{tier:?} gave {jit:?}\n    executor gave {reference:?}"));
        }
        if let Some(left) = leftovers(&r.vm) {
            problems.push(format!("{tier:?}: {left}"));
        }
        let stats = soma_jit::stats(&mut r.vm).expect("JIT installed");
        if stats.compile_failures > 0 {
            problems.push(format!("{tier:?}: {} blocks failed to compile", stats.compile_failures));
        }
        if stats.blocks_compiled == 0 {
            problems.push(format!("{tier:?}: nothing compiled (threshold 0 compiles the program itself)"));
        }
        t.compiled += stats.blocks_compiled;
        t.speculative += stats.speculative;
        t.ran_native += ran_native(&r.vm, id).len();
        if let Some(s) = stdlib {
            let codes = ran_native(&r.vm, s);
            t.ran_native += codes.len();
            t.stdlib_ran.extend(codes);
        }
    }
    record(&mut t.outcomes, &case.name, &reference);
    if problems.is_empty() {
        t.passed += 1;
    } else {
        t.failed += 1;
        println!("DIFFERENCE in {}: {}", case.name, problems.join("; "));
    }
}

fn record(out: &mut String, name: &str, o: &Outcome) {
    // Debug escapes newlines, so one source is one line.
    writeln!(out, "{name}\t{o:?}").unwrap();
}

/// Compile every Code of the stdlib (loaded and run first, so the guarded sites see its
/// words): the Codes no source happened to execute still go through lowering, the verifier
/// and code emission on this architecture. Returns (Codes, compiled) or the first failure.
fn compile_stdlib() -> Result<(usize, u64), String> {
    let mut r = common::Runner::new(Tier::Jit(0));
    let id = r.vm.load_module_bytes(common::STDLIB).map_err(|e| e.to_string())?;
    soma_runtime::exec::run_module(&mut r.vm, id).map_err(|e| e.to_string())?;
    let blocks = r.vm.module(id).expect("loaded").blocks.clone();
    for (i, &b) in blocks.iter().enumerate() {
        if r.vm.block_obj(b).expect("block").native_entry.get().is_none() {
            soma_jit::compile_block(&mut r.vm, b).map_err(|e| format!("stdlib Code {i}: {e}"))?;
        }
    }
    let stats = soma_jit::stats(&mut r.vm).expect("JIT installed");
    Ok((blocks.len(), stats.blocks_compiled))
}

fn run_all() -> Tally {
    let mut t = Tally::default();
    let corpus = corpus_cases();
    assert!(corpus.len() > 400, "the corpus has only {} cases", corpus.len());
    for case in &corpus {
        check(&mut t, case);
    }
    let stdlib_program = CorpusCase {
        name: "stdlib".into(),
        stdlib: false,
        module: common::STDLIB.to_vec(),
    };
    check(&mut t, &stdlib_program);
    for (name, bytes) in PROGRAMS {
        let program = CorpusCase {
            name: format!("program {name}"),
            stdlib: true,
            module: bytes.to_vec(),
        };
        check(&mut t, &program);
    }
    let stdlib_codes = match compile_stdlib() {
        Ok((codes, compiled)) => {
            t.compiled += compiled;
            t.passed += 1;
            codes
        }
        Err(e) => {
            t.failed += 1;
            println!("DIFFERENCE: the stdlib does not compile: {e}");
            0
        }
    };
    println!(
        "{} corpus cases, the stdlib and {} programs, each on the baseline and the optimizing \
         tier; {} blocks compiled ({} speculative), {} ran as native code; \
         all {} stdlib Codes compiled, {} of them ran as native code",
        corpus.len(),
        PROGRAMS.len(),
        t.compiled,
        t.speculative,
        t.ran_native,
        stdlib_codes,
        t.stdlib_ran.len()
    );
    t
}

fn main() {
    // `cargo test` passes libtest's flags (`--quiet`, filters): there is nothing to select.
    let t = on_big_stack(run_all);
    if let Some(path) = std::env::var_os("SOMA_DIFF_OUTCOMES") {
        std::fs::write(&path, &t.outcomes).unwrap_or_else(|e| panic!("writing {path:?}: {e}"));
    }
    println!("{}: {} passed, {} failed", std::env::consts::ARCH, t.passed, t.failed);
    if t.failed > 0 {
        std::process::exit(1);
    }
}
