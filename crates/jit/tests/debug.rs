//! Debug output: CLIF / machine-code / stats dumps, the perf map, configuration parsing, stats.

use soma_jit::config::parse_threshold;
use soma_jit::{DumpFlags, JitConfig};
use soma_runtime::encode::assemble;
use soma_runtime::Vm;

fn vm_with(config: JitConfig) -> Box<Vm> {
    let mut vm = Vm::new();
    soma_jit::install_with(&mut vm, config).unwrap();
    vm
}

const FIB: &str = "{ !_.n _.n _.n 2 >< { } { !_.m _.m 1 >- >fib _.m 2 >- >fib >+ } >choose >chain } !fib 12 >fib";

#[test]
fn dumps_clif_asm_and_stats() {
    let mut vm = vm_with(JitConfig {
        threshold: Some(0),
        dump: DumpFlags::parse("clif,asm,stats"),
        capture_dumps: true,
        ..JitConfig::default()
    });
    let id = vm.load_module(assemble(FIB).unwrap());
    soma_jit::run_module(&mut vm, id).unwrap();
    let dumps = soma_jit::take_dumps(&mut vm);
    let clif: Vec<_> = dumps.iter().filter(|d| d.starts_with("; jit: CLIF of")).collect();
    let asm: Vec<_> = dumps.iter().filter(|d| d.starts_with("; jit: machine code of")).collect();
    let stats: Vec<_> = dumps.iter().filter(|d| d.starts_with("jit: compiled")).collect();
    assert_eq!(clif.len(), 4, "program + 3 blocks");
    assert_eq!(asm.len(), 4);
    assert_eq!(stats.len(), 4);
    // Helpers are called by name (`HELPER_NAMESPACE`), linked at install.
    assert!(clif[0].contains("function") && clif[0].contains("call fn"), "{}", clif[0]);
    assert!(stats[0].contains(" us, ") && stats[0].ends_with(" bytes"), "{}", stats[0]);
    assert!(stats.iter().any(|s| s.contains(" = fib@1:1 (")), "named by Store path: {stats:?}");
    assert!(soma_jit::take_dumps(&mut vm).is_empty());
}

#[test]
fn perf_map_names_compiled_blocks() {
    let mut vm = vm_with(JitConfig {
        threshold: Some(0),
        perf_map: true,
        ..JitConfig::default()
    });
    let id = vm.load_module(assemble("{ 1 2 >+ } !three >three").unwrap());
    soma_jit::run_module(&mut vm, id).unwrap();
    let map = std::fs::read_to_string(format!("/tmp/perf-{}.map", std::process::id())).unwrap();
    let line = map
        .lines()
        .find(|l| l.ends_with(" soma:three@1:1"))
        .expect("the block in the perf map, named by its Store path and position");
    let parts: Vec<&str> = line.split(' ').collect();
    assert_eq!(parts.len(), 3);
    assert!(usize::from_str_radix(parts[0], 16).unwrap() > 0);
    assert!(usize::from_str_radix(parts[1], 16).unwrap() > 0);
}

#[test]
fn config_parsing() {
    assert_eq!(parse_threshold("0"), Some(Some(0)));
    assert_eq!(parse_threshold(" 25 "), Some(Some(25)));
    assert_eq!(parse_threshold("off"), Some(None));
    assert_eq!(parse_threshold("OFF"), Some(None));
    assert_eq!(parse_threshold("soon"), None);
    let d = DumpFlags::parse("stats, clif");
    assert!(d.stats && d.clif && !d.asm);
    assert_eq!(DumpFlags::parse("all"), DumpFlags { clif: true, asm: true, stats: true });
    assert_eq!(DumpFlags::parse(""), DumpFlags::default());
}

#[test]
fn stats_are_kept() {
    let mut vm = vm_with(JitConfig {
        threshold: Some(0),
        time_native: true,
        ..JitConfig::default()
    });
    let id = vm.load_module(assemble(FIB).unwrap());
    soma_jit::run_module(&mut vm, id).unwrap();
    let s = soma_jit::stats(&mut vm).unwrap();
    assert_eq!(s.blocks_compiled, 4);
    assert_eq!(s.blocks.len(), 4);
    assert!(s.total_code_bytes > 0 && s.total_compile_ns > 0 && s.native_ns > 0);
    assert!(s.median_compile_us() <= s.total_compile_ns / 1000);
    assert!(s.blocks.iter().all(|b| b.code_size > 0));
    assert_eq!(s.blocks.iter().map(|b| b.instrs).sum::<usize>(), 23);
    // Without an installation there are no stats.
    assert!(soma_jit::stats(&mut Vm::new()).is_none());
    assert!(soma_jit::compile_block(&mut Vm::new(), soma_runtime::Value::NIL).is_err());
}

#[test]
fn compile_failure_is_not_a_crash() {
    // Compiling something that is not a Block fails cleanly and leaves the VM usable.
    let mut vm = vm_with(JitConfig::default());
    assert!(soma_jit::compile_block(&mut vm, soma_runtime::Value::TRUE).is_err());
    let id = vm.load_module(assemble("1 2 >+").unwrap());
    soma_jit::run_module(&mut vm, id).unwrap();
    assert_eq!(vm.al().len(), 1);
}

#[test]
fn native_time_is_off_by_default() {
    let mut vm = vm_with(JitConfig {
        threshold: Some(0),
        ..JitConfig::default()
    });
    let id = vm.load_module(assemble(FIB).unwrap());
    soma_jit::run_module(&mut vm, id).unwrap();
    assert_eq!(soma_jit::stats(&mut vm).unwrap().native_ns, 0);
}
