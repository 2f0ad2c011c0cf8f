//! The SOMA JIT: lowers decoded SOMA bytecode to Cranelift IR and compiles it.
