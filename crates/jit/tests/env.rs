//! `JitConfig::from_env` and `install` read SOMA_JIT_THRESHOLD / SOMA_JIT_DUMP /
//! SOMA_JIT_PERFMAP / SOMA_JIT_BACKGROUND. One test in its own binary: it sets process environment variables.

use soma_jit::{Background, DumpFlags, JitConfig};

#[test]
fn environment_configures_the_jit() {
    std::env::set_var("SOMA_JIT_THRESHOLD", "7");
    std::env::set_var("SOMA_JIT_DUMP", "stats");
    std::env::set_var("SOMA_JIT_PERFMAP", "1");
    let c = JitConfig::from_env();
    assert_eq!(c.threshold, Some(7));
    assert_eq!(c.dump, DumpFlags { clif: false, asm: false, stats: true });
    assert!(c.perf_map);

    std::env::set_var("SOMA_JIT_THRESHOLD", "off");
    std::env::remove_var("SOMA_JIT_PERFMAP");
    let c = JitConfig::from_env();
    assert_eq!(c.threshold, None);
    assert!(!c.perf_map);
    let mut vm = soma_runtime::Vm::new();
    soma_jit::install(&mut vm).unwrap();
    assert_eq!(vm.tier_up_threshold(), None, "off installs no hook");

    std::env::set_var("SOMA_JIT_THRESHOLD", "0");
    std::env::remove_var("SOMA_JIT_DUMP");
    soma_jit::install(&mut vm).unwrap();
    assert_eq!(vm.tier_up_threshold(), Some(0));

    // Garbage keeps the default.
    std::env::set_var("SOMA_JIT_THRESHOLD", "soon");
    assert_eq!(JitConfig::from_env().threshold, JitConfig::default().threshold);

    // SOMA_JIT_BACKGROUND: on by default, 0 / lockstep, garbage keeps the default.
    std::env::remove_var("SOMA_JIT_BACKGROUND");
    assert_eq!(JitConfig::from_env().background, Background::On);
    std::env::set_var("SOMA_JIT_BACKGROUND", "0");
    assert_eq!(JitConfig::from_env().background, Background::Off);
    std::env::set_var("SOMA_JIT_BACKGROUND", "lockstep");
    assert_eq!(JitConfig::from_env().background, Background::Lockstep);
    std::env::set_var("SOMA_JIT_BACKGROUND", "later");
    assert_eq!(JitConfig::from_env().background, Background::On);
    std::env::remove_var("SOMA_JIT_BACKGROUND");

    // SOMA_JIT_OPT_THRESHOLD: N or off; garbage keeps the default.
    std::env::remove_var("SOMA_JIT_OPT_THRESHOLD");
    assert_eq!(JitConfig::from_env().opt_threshold, Some(soma_jit::config::DEFAULT_OPT_THRESHOLD));
    std::env::set_var("SOMA_JIT_OPT_THRESHOLD", "0");
    assert_eq!(JitConfig::from_env().opt_threshold, Some(0));
    std::env::set_var("SOMA_JIT_OPT_THRESHOLD", "off");
    assert_eq!(JitConfig::from_env().opt_threshold, None);
    std::env::set_var("SOMA_JIT_OPT_THRESHOLD", "hot");
    assert_eq!(JitConfig::from_env().opt_threshold, Some(soma_jit::config::DEFAULT_OPT_THRESHOLD));
    std::env::remove_var("SOMA_JIT_OPT_THRESHOLD");
}
