//! Arbitrary bytes to the module decoder: it must return `Err` (never panic, never allocate
//! what the input cannot describe), and whatever it accepts must survive an encode/decode
//! round trip byte for byte.
#![no_main]

use libfuzzer_sys::fuzz_target;
use soma_runtime::decode::decode_module;
use soma_runtime::encode::encode_module;

soma_fuzz::asan_options!();

fuzz_target!(|data: &[u8]| {
    let Ok(module) = decode_module(data) else {
        return;
    };
    // The writer emits the smallest form, so the first re-encoding may differ from `data`
    // (an Int written in the BigInt form); from there on it is a fixed point.
    let bytes = encode_module(&module);
    let again = decode_module(&bytes).expect("the decoder rejects what the encoder wrote");
    assert_eq!(encode_module(&again), bytes, "encode/decode is not a fixed point");
    assert_eq!(again.codes.len(), module.codes.len());
});
