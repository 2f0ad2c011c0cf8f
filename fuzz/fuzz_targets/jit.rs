//! Arbitrary bytes to the decoder; a module it accepts is loaded into fresh VMs, every Block
//! is compiled by the JIT, and (when the reference executor finishes it within the harness's
//! guards) it is run on both tiers and the outcomes compared. See `soma_fuzz` and
//! docs/fuzzing.md.
#![no_main]

use libfuzzer_sys::fuzz_target;
use soma_fuzz::{differential, JitMode};
use soma_runtime::decode::decode_module;

soma_fuzz::asan_options!();

fuzz_target!(|data: &[u8]| {
    let Ok(module) = decode_module(data) else {
        return;
    };
    // The last byte picks how the JIT run compiles (precompiled or tier-up).
    let mode = JitMode::from_byte(data.last().copied().unwrap_or(0));
    differential(&module, mode);
});
