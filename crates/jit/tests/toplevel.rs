//! A builtin that runs a program in the middle of a block (as the `load` extension does):
//! the compiled program must use the top-level Register, as the executor's `run_module` does.

mod common;
use common::{Runner, Tier};
use soma_runtime::encode::assemble;
use soma_runtime::ffi::{SOMA_ERROR, SOMA_OK};
use soma_runtime::Vm;

struct Host {
    program: u32,
    jit: bool,
}

unsafe extern "C" fn host_call(user: *mut std::ffi::c_void, vm: *mut Vm, _id: u32) -> i32 {
    // SAFETY: `user` is the `Host` the test keeps alive for the VM's life; `vm` is the live VM
    // that is calling us.
    let (host, vm) = unsafe { (&*(user as *const Host), &mut *vm) };
    let r = if host.jit {
        soma_jit::run_module(vm, host.program)
    } else {
        soma_runtime::exec::run_module(vm, host.program)
    };
    match r {
        Ok(()) => SOMA_OK,
        Err(e) => {
            vm.set_error(e);
            SOMA_ERROR
        }
    }
}

fn run(tier: Tier) -> common::Outcome {
    let mut r = Runner::new(tier);
    let program = r.vm.load_module(assemble("5 !_.t _.t").unwrap());
    let host = Box::new(Host {
        program,
        jit: tier != Tier::Executor,
    });
    r.vm.define_host_builtin("runp", 1);
    r.vm.set_host_call(Some(host_call), &*host as *const Host as *mut std::ffi::c_void);
    let res = r.run_src("1 !_.t { 9 !_.t >runp _.t } >chain _.t >runp");
    let o = r.outcome(res);
    drop(r);
    drop(host);
    o
}

#[test]
fn program_run_from_a_builtin_uses_the_top_level_register() {
    let reference = run(Tier::Executor);
    assert_eq!(reference.al, "[5, 9, 5, 5]", "{reference:?}");
    assert_eq!(run(Tier::Jit(0)), reference);
    assert_eq!(run(Tier::Jit(1)), reference);
}
