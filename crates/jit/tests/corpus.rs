//! Every test case of tests/soma (compiled to bytecode by `fixtures/make_corpus.py`) runs on
//! the reference executor and under the JIT at threshold 0; AL, output and error must agree.

mod common;
use common::{corpus_cases, CorpusCase, Runner, Tier};
use soma_runtime::decode::decode_module;

fn run(tier: Tier, case: &CorpusCase) -> common::Outcome {
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
            let cases = corpus_cases();
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
