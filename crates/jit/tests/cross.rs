//! Every Code of the stdlib, of the whole tests/soma suite and of sample programs lowers to IR
//! that passes the Cranelift verifier and compiles for aarch64 (not run) and x86_64.

mod common;
use soma_jit::cross::{compile_module_for, isa_for};
use soma_runtime::encode::assemble;
use soma_runtime::Vm;

const SAMPLES: &[&str] = &[
    "{ !_.n _.n _.n 2 >< { } { !_.m _.m 1 >- >fib _.m 2 >- >fib >+ } >choose >chain } !fib 20 >fib",
    "0 !acc 10000 !i { acc i >+ !acc  i 1 >- !i  0 i >< >block Nil >choose } >chain acc",
    "42 !x  x. !r  7 !r  x 1 !a.b 2 !a. Void !a.",
    "{ !_. 5 !_.v  _.w 1 >+ !_.w } !setv 10 !_.w  _. >setv  _.v _.w _.v. !_.q. >_.q",
    "9223372036854775807 1 >+ -7 2 >/ -7 2 >% 3 4 >* 1 2 >< (a) (b) >concat >print",
    "1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 >+ >+ >+ >+ >+ >+ >+ >+ >+ >+",
    "{ 1 } >chain >{ 2 } 5 >chain >block",
];

fn check_triple(triple: &str) -> usize {
    let isa = isa_for(triple).expect("ISA available");
    let mut vm = Vm::new();
    let mut total = 0;
    let id = vm.load_module_bytes(common::STDLIB).expect("stdlib");
    // Run the stdlib first so the Store holds its words (guarded sites see real builtins).
    soma_runtime::exec::run_module(&mut vm, id).expect("stdlib runs");
    let compiled = compile_module_for(&mut vm, id, &*isa).unwrap_or_else(|e| panic!("{triple}: {e}"));
    // Each Code as baseline code, and each but the program as the optimizing tier's.
    assert_eq!(compiled.len(), 2 * vm.module(id).unwrap().module.codes.len() - 1);
    assert!(compiled.iter().all(|c| c.code_size > 0));
    let speculative = compiled.iter().filter(|c| c.speculative).count();
    assert!(speculative > 20, "{speculative} stdlib Codes compiled speculatively");
    total += compiled.len();
    for src in SAMPLES {
        let id = vm.load_module(assemble(src).unwrap());
        let compiled = compile_module_for(&mut vm, id, &*isa).unwrap_or_else(|e| panic!("{triple}: {e}"));
        total += compiled.len();
    }
    for case in common::corpus_cases() {
        let id = vm.load_module_bytes(&case.module).expect("corpus module decodes");
        let compiled = compile_module_for(&mut vm, id, &*isa)
            .unwrap_or_else(|e| panic!("{triple}, {}: {e}", case.name));
        assert_eq!(compiled.len(), 2 * vm.module(id).unwrap().module.codes.len() - 1, "{}", case.name);
        total += compiled.len();
    }
    total
}

#[test]
fn stdlib_suite_and_samples_compile_for_aarch64() {
    let n = check_triple("aarch64-unknown-linux-gnu");
    assert!(n > 1000, "{n} codes");
}

#[test]
fn stdlib_suite_and_samples_compile_for_x86_64() {
    check_triple("x86_64-unknown-linux-gnu");
}

#[test]
fn apple_aarch64_call_conv_also_compiles() {
    check_triple("aarch64-apple-darwin");
}
