//! Structured programs (always valid bytecode, built from an `arbitrary` description and
//! written with the runtime's encoder) run on the reference executor and the JIT; any
//! difference in AL, error, printed output or frame state is a crash.
#![no_main]

use libfuzzer_sys::fuzz_target;
use soma_fuzz::gen::Program;
use soma_fuzz::{differential, JitMode};
use soma_runtime::decode::decode_module;
use soma_runtime::encode::encode_module;

soma_fuzz::asan_options!();

fuzz_target!(|p: Program| {
    let module = p.to_module();
    let bytes = encode_module(&module);
    let decoded = decode_module(&bytes).expect("the generator builds only valid modules");
    assert_eq!(decoded, module, "decode(encode(m)) != m");
    differential(&decoded, JitMode::from_byte(p.mode));
});
