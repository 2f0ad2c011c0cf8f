//! The SOMA runtime: NaN-boxed values, the native cell graph, memory
//! management and the C-ABI helpers (`soma_rt_*`) that JIT code calls.
