//! Every test case of tests/soma (compiled to bytecode by `fixtures/make_corpus.py`) runs on
//! the reference executor and under the JIT at threshold 0; AL, output and error must agree.

mod common;
use common::{Runner, Tier};
use soma_runtime::decode::decode_module;

const CORPUS: &[u8] = include_bytes!("fixtures/corpus.bin");

struct Case {
    name: String,
    stdlib: bool,
    module: Vec<u8>,
}

fn cases() -> Vec<Case> {
    let mut out = Vec::new();
    let mut p = 0;
    let take = |p: &mut usize, n: usize| {
        let s = &CORPUS[*p..*p + n];
        *p += n;
        s
    };
    while p < CORPUS.len() {
        let n = u16::from_le_bytes(take(&mut p, 2).try_into().unwrap()) as usize;
        let name = String::from_utf8(take(&mut p, n).to_vec()).unwrap();
        let stdlib = take(&mut p, 1)[0] == 1;
        let len = u32::from_le_bytes(take(&mut p, 4).try_into().unwrap()) as usize;
        let module = take(&mut p, len).to_vec();
        out.push(Case { name, stdlib, module });
    }
    out
}

fn run(tier: Tier, case: &Case) -> common::Outcome {
    let mut r = Runner::new(tier);
    if case.stdlib {
        // The stdlib's definitions run on the executor; its words tier up when used.
        let id = r.vm.load_module_bytes(common::STDLIB).unwrap();
        soma_runtime::exec::run_module(&mut r.vm, id).unwrap();
    }
    let res = r.run_module(decode_module(&case.module).unwrap());
    assert_eq!(r.vm.shadow_depth(), 0, "{}", case.name);
    r.outcome(res)
}

#[test]
fn soma_test_corpus_agrees() {
    std::thread::Builder::new()
        .stack_size(1 << 30)
        .spawn(|| {
            let cases = cases();
            assert!(cases.len() > 400, "{} cases", cases.len());
            for case in &cases {
                let reference = run(Tier::Executor, case);
                let jit = run(Tier::Jit(0), case);
                assert_eq!(jit, reference, "case {}", case.name);
            }
        })
        .unwrap()
        .join()
        .unwrap();
}
