//! Support for the `cargo bench` dashboards: loading the checked-in bytecode of
//! the benchmark programs (`benches/bytecode/*.bc`, made by
//! `benches/build-bytecode.sh` from `benches/programs/*.soma` and the stdlib)
//! and running them on a fresh native VM, with or without the JIT.

use soma_runtime::vm::HostIo;
use soma_runtime::{SomaError, Vm};
use std::path::PathBuf;

/// The benchmark programs, by file stem.
pub const PROGRAMS: &[&str] = &[
    "fib",
    "chain_loop",
    "collatz",
    "dict_workload",
    "string_build",
    "list_map_fold",
    "bst",
];

/// Output sink that keeps the lines, so a run can be checked after timing.
#[derive(Default)]
pub struct Lines(pub std::rc::Rc<std::cell::RefCell<Vec<String>>>);

impl HostIo for Lines {
    fn write_line(&mut self, line: &str) {
        self.0.borrow_mut().push(line.to_string());
    }
    fn read_line(&mut self) -> Option<String> {
        None
    }
}

pub fn bytecode_path(stem: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("bytecode").join(format!("{stem}.bc"))
}

pub fn read_bytecode(stem: &str) -> Vec<u8> {
    let path = bytecode_path(stem);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e} (run benches/build-bytecode.sh)", path.display()))
}

/// How a program runs.
#[derive(Clone, Copy, Debug)]
pub enum Tier {
    /// The runtime's reference executor; nothing compiled.
    Executor,
    /// The JIT with tier-up after this many executions (0: everything compiled first).
    Jit(u64),
}

/// A VM with the stdlib loaded (and the JIT installed for `Tier::Jit`), ready to run a program.
pub fn prepared_vm(stdlib: &[u8], tier: Tier) -> Box<Vm> {
    let mut vm = Vm::new();
    vm.set_io(Box::new(Lines::default()));
    if let Tier::Jit(threshold) = tier {
        let config = soma_jit::JitConfig {
            threshold: Some(threshold),
            ..soma_jit::JitConfig::default()
        };
        soma_jit::install_with(&mut vm, config).expect("JIT installs");
    }
    let lib = vm.load_module_bytes(stdlib).expect("stdlib bytecode decodes");
    run(&mut vm, lib, tier).expect("stdlib runs");
    vm
}

/// Load and run one module on `vm`.
pub fn run_bytes(vm: &mut Vm, program: &[u8], tier: Tier) -> Result<(), SomaError> {
    let id = vm.load_module_bytes(program).expect("program bytecode decodes");
    run(vm, id, tier)
}

fn run(vm: &mut Vm, module: u32, tier: Tier) -> Result<(), SomaError> {
    match tier {
        Tier::Executor => soma_runtime::exec::run_module(vm, module),
        Tier::Jit(_) => soma_jit::run_module(vm, module),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every program prints its `... ok` line on both tiers (the programs raise on a wrong
    /// answer, so this also checks the answers).
    #[test]
    fn every_program_is_right_on_every_tier() {
        let stdlib = read_bytecode("stdlib");
        for &name in PROGRAMS {
            // (tier, optimizing-tier threshold): baseline, tier-up, everything optimized.
            let default_opt = soma_jit::JitConfig::default().opt_threshold;
            for (tier, opt) in [
                (Tier::Executor, None),
                (Tier::Jit(0), default_opt),
                (Tier::Jit(2), default_opt),
                (Tier::Jit(0), Some(0)),
            ] {
                let mut vm = prepared_vm(&stdlib, Tier::Executor);
                let lines = Lines::default();
                let seen = lines.0.clone();
                vm.set_io(Box::new(lines));
                if let Tier::Jit(t) = tier {
                    let config = soma_jit::JitConfig {
                        threshold: Some(t),
                        opt_threshold: opt,
                        ..Default::default()
                    };
                    soma_jit::install_with(&mut vm, config).expect("JIT installs");
                }
                run_bytes(&mut vm, &read_bytecode(name), tier)
                    .unwrap_or_else(|e| panic!("{name} on {tier:?}, optimizing at {opt:?}: {e}"));
                let out = seen.borrow();
                assert!(
                    out.last().is_some_and(|l| l.ends_with(" ok")),
                    "{name} on {tier:?}, optimizing at {opt:?}, printed {out:?}"
                );
            }
        }
    }
}
