//! The native reference executor: runs decoded Codes by calling the `Vm` operations
//! (`ops.rs`, `builtins.rs`) directly. The C ABI (`ffi.rs`) is for compiled code and hosts.
//!
//! Block-to-block calls and `chain` loops do not recurse on the native stack: the executor
//! keeps its own activation stack (a Code activation per running block, plus a marker for
//! every `chain` in progress), so interpreted SOMA recursion is bounded only by the VM's depth
//! limit. Native recursion happens only through compiled blocks and helpers that execute
//! values (`soma_rt_exec_*`); [`run_block`] guards those with a check of the remaining
//! native stack.

use crate::error::{msg, RtResult, SomaError};
use crate::abi::{NativeEntry, SOMA_ERROR, SOMA_OK};
use crate::opcodes::Opcode;
use crate::value::Value;
use crate::vm::{LoadedModule, Vm};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::rc::Rc;

pub use crate::stack::{stack_is_low, thread_stack_limit};

enum Act {
    /// A Code being run; `is_block` when it owns a VM frame (everything but the top level).
    Code {
        /// A module of the VM: loaded modules are never unloaded and their `Rc` contents never
        /// move, so the pointer is valid for the whole run (no reference count traffic per
        /// activation).
        module: *const LoadedModule,
        code: usize,
        pc: usize,
        is_block: bool,
    },
    /// A `chain` in progress: when it is on top, the chain looks at the AL.
    Chain,
}

/// Run code 0 of a loaded module at top level (in the persistent top-level Register),
/// interpreted. Re-entrant: run by a builtin in the middle of a block, the program still uses
/// the top-level Register, and depth and the current block carry on from the caller.
pub fn run_module(vm: &mut Vm, module: u32) -> RtResult<()> {
    run_program(vm, module, None)
}

/// The program entry of every tier: [`run_module`], or with `compiled`, the native code of
/// the module's code 0 (compiled for this VM) in its place. Either way the program is
/// profiled like a block and runs in the top-level Register.
pub fn run_program(vm: &mut Vm, module: u32, compiled: Option<NativeEntry>) -> RtResult<()> {
    let m = vm
        .module(module)
        .map(Rc::as_ptr)
        .ok_or_else(|| SomaError::runtime(format!("no module {module}")))?;
    // SAFETY: see `Act::Code::module`.
    let m = unsafe { &*m };
    if m.module.codes.is_empty() {
        return Ok(());
    }
    // The program's Code is profiled like a block's (its Block object is never pushed).
    if let Some(b) = vm.block_obj(m.blocks[0]) {
        b.exec_count.set(b.exec_count.get() + 1);
    }
    let pushed = vm.enter_top_level();
    let result = match compiled {
        // SAFETY: `entry` was compiled for this VM from code 0, which runs at top level (no
        // frame of its own); `vm` is live.
        Some(entry) => match unsafe { entry(vm as *mut Vm, 0) } {
            SOMA_OK => Ok(()),
            _ => Err(vm.take_error().unwrap_or_else(|| SomaError::runtime("compiled program failed"))),
        },
        None => interpret(vm, m as *const LoadedModule, 0, false),
    };
    vm.leave_top_level(pushed);
    result
}

/// Execute a Block to completion: compiled code when it has a native entry, else the
/// interpreter. Used by helpers that execute values.
pub fn run_block(vm: &mut Vm, block: Value) -> RtResult<()> {
    vm.maybe_tier_up(block);
    let b = vm.block_obj(block).expect("run_block needs a Block");
    if let Some(entry) = b.native_entry.get() {
        return run_native(vm, block, entry, false);
    }
    if vm.stack_is_low() {
        return Err(msg::recursion(vm.max_depth()));
    }
    let (module, code) = (b.module, b.code);
    vm.enter_block(block)?;
    let m = Rc::as_ptr(vm.module(module).expect("block of a loaded module"));
    interpret(vm, m, code as usize, true)
}

/// Run compiled `entry` of `block` in a frame of its own ([`call_entry`]). `chained` tells
/// the code that a `chain` loop runs it (see `abi::NativeEntry`).
pub fn run_native(vm: &mut Vm, block: Value, entry: NativeEntry, chained: bool) -> RtResult<()> {
    if call_entry(vm, block, entry, chained, false) == SOMA_OK {
        Ok(())
    } else {
        Err(vm.take_error().unwrap_or_else(|| SomaError::runtime("compiled block failed")))
    }
}

/// Call compiled `entry` of `block` in a frame of its own: the one protocol of a call into
/// compiled code from Rust, for the executor ([`run_native`]) and the JIT's helpers alike
/// (compiled code inlines the same steps on the same layouts, `translate/inline.rs`). The
/// native stack check, the frame entry (after a safepoint when `safepoint`: a helper's call
/// site is one), the call, the frame exit. Returns the entry's status; an error stays on the
/// VM. Inlined into its callers: it is on the native stack of every nested call into compiled
/// code, whose depth must fit (deep SOMA recursion runs on the native stack).
#[inline]
pub fn call_entry(vm: &mut Vm, block: Value, entry: NativeEntry, chained: bool, safepoint: bool) -> i32 {
    if vm.stack_is_low() {
        vm.set_error(msg::recursion(vm.max_depth()));
        return SOMA_ERROR;
    }
    let entered = if safepoint {
        vm.safepoint().and_then(|()| vm.enter_block(block))
    } else {
        vm.enter_block(block)
    };
    if let Err(e) = entered {
        vm.set_error(e);
        return SOMA_ERROR;
    }
    // SAFETY: the JIT installed `entry` for this block; it runs the block's body on a live VM
    // whose frame for the block has just been entered.
    let status = unsafe { entry(vm as *mut Vm, chained as u32) };
    vm.leave_block();
    status
}

/// Interpret the rest of `block`'s Code from instruction `pc` in the frame that is already
/// current (the caller owns it: `run_block` entered it, or the top level for code 0). Compiled
/// code calls this to leave native code mid-Code (a failed guard: a deoptimisation exit).
pub fn resume(vm: &mut Vm, block: Value, pc: usize) -> RtResult<()> {
    let b = vm.block_obj(block).expect("resume needs a Block");
    let (module, code) = (b.module, b.code as usize);
    let m = Rc::as_ptr(vm.module(module).expect("block of a loaded module"));
    interpret_from(vm, m, code, pc, false)
}

fn interpret(vm: &mut Vm, module: *const LoadedModule, code: usize, is_block: bool) -> RtResult<()> {
    interpret_from(vm, module, code, 0, is_block)
}

fn interpret_from(
    vm: &mut Vm,
    module: *const LoadedModule,
    code: usize,
    pc: usize,
    is_block: bool,
) -> RtResult<()> {
    let mut acts = vec![Act::Code {
        module,
        code,
        pc,
        is_block,
    }];
    // A panic is a bug of the runtime; like the C ABI, turn it into a RuntimeError at the
    // instruction being run, once per run rather than per instruction.
    let result = match catch_unwind(AssertUnwindSafe(|| run_acts(vm, &mut acts))) {
        Ok(r) => r,
        Err(payload) => {
            let (line, col) = current_position(&acts);
            Err(SomaError::from_panic(&*payload).at(line, col))
        }
    };
    if result.is_err() {
        // Unwind: every block activation still on the stack owns a VM frame.
        for act in acts.drain(..).rev() {
            if let Act::Code { is_block: true, .. } = act {
                vm.leave_block();
            }
        }
    }
    result
}

/// Position of the instruction being executed by the innermost Code activation.
fn current_position(acts: &[Act]) -> (u32, u32) {
    for act in acts.iter().rev() {
        if let Act::Code {
            module, code, pc, ..
        } = act
        {
            // SAFETY: see `Act::Code::module`.
            let ins = unsafe { &**module }.module.codes[*code].instrs[pc.saturating_sub(1)];
            return (ins.line, ins.col);
        }
    }
    (0, 0)
}

/// The module of the innermost Code activation.
fn current_module<'a>(acts: &[Act]) -> Option<&'a LoadedModule> {
    acts.iter().rev().find_map(|act| match act {
        // SAFETY: see `Act::Code::module`.
        Act::Code { module, .. } => Some(unsafe { &**module }),
        Act::Chain => None,
    })
}

/// Store `pc` into the Code activation at `i` (before anything that may push activations,
/// so that error positions and resumption see it).
#[inline(always)]
fn save_pc(acts: &mut [Act], i: usize, pc: usize) {
    if let Some(Act::Code { pc: slot, .. }) = acts.get_mut(i) {
        *slot = pc;
    }
}

fn run_acts(vm: &mut Vm, acts: &mut Vec<Act>) -> RtResult<()> {
    while let Some(top) = acts.last_mut() {
        let (module, code, pc, is_block) = match top {
            Act::Chain => {
                match vm.chain_next() {
                    Some(v) => {
                        if let Err(e) = exec(vm, acts, v, true) {
                            let (line, col) = current_position(acts);
                            return Err(match current_module(acts) {
                                Some(m) => vm.position_error(e, line, col, m),
                                None => e.at(line, col),
                            });
                        }
                    }
                    None => {
                        acts.pop();
                    }
                }
                continue;
            }
            Act::Code {
                module,
                code,
                pc,
                is_block,
            } => (*module, *code, *pc, *is_block),
        };
        // SAFETY: loaded modules are never unloaded (the VM keeps them for its whole life),
        // so this reference stays valid while `acts` changes below.
        let m: &LoadedModule = unsafe { &*module };
        run_code(vm, acts, m, code, pc, is_block)?;
    }
    Ok(())
}

/// Run the Code activation on top of `acts` (at index `acts.len() - 1`) from `pc` until it
/// finishes (then it is popped) or it pushes another activation (its `pc` is saved first).
/// The instruction, path and constant tables stay in locals for the whole stretch.
#[inline(always)]
fn run_code(
    vm: &mut Vm,
    acts: &mut Vec<Act>,
    m: &LoadedModule,
    code: usize,
    mut pc: usize,
    is_block: bool,
) -> RtResult<()> {
    let me = acts.len() - 1;
    let c = &m.module.codes[code];
    let instrs = &c.instrs[..];
    let paths = &c.paths[..];
    let consts = &m.consts[code][..];
    loop {
        let Some(&ins) = instrs.get(pc) else {
            if is_block {
                vm.leave_block();
            }
            acts.pop();
            return Ok(());
        };
        pc += 1;
        let k = ins.operand as usize;
        let result = match ins.op {
            // Store paths go through the epoch-guarded inline cache line of their site
            // (`store_cache.rs`); a read of a path that does not exist falls back to the full
            // operation, which reports the error.
            Opcode::SetStore => vm.set_store_cached(&paths[k], &m.store_cache[code][k]),
            Opcode::LoadStore | Opcode::ExecStore => match m.store_cache[code][k].resolve(vm.graph(), &paths[k]) {
                Some(cell) if ins.op == Opcode::LoadStore => {
                    vm.push(cell.value());
                    Ok(())
                }
                Some(cell) => {
                    save_pc(acts, me, pc);
                    exec(vm, acts, cell.value(), false)
                }
                None if ins.op == Opcode::LoadStore => vm.load_store(&paths[k]),
                None => vm.load_store(&paths[k]).and_then(|()| {
                    let v = vm.pop().expect("load pushed a value");
                    save_pc(acts, me, pc);
                    exec(vm, acts, v, false)
                }),
            },
            Opcode::Const => {
                vm.push(consts[k]);
                Ok(())
            }
            Opcode::LoadReg => vm.load_reg(&paths[k]),
            Opcode::RefStore => vm.ref_store(&paths[k]),
            Opcode::RefReg => vm.ref_reg(&paths[k]),
            Opcode::SetReg => vm.set_reg(&paths[k]),
            Opcode::SetrefStore => vm.setref_store(&paths[k]),
            Opcode::SetrefReg => vm.setref_reg(&paths[k]),
            Opcode::ExecReg => vm.load_reg(&paths[k]).and_then(|()| {
                let v = vm.pop().expect("load pushed a value");
                save_pc(acts, me, pc);
                exec(vm, acts, v, false)
            }),
            Opcode::ExecConst => {
                save_pc(acts, me, pc);
                exec(vm, acts, consts[k], false)
            }
        };
        if let Err(e) = result {
            save_pc(acts, me, pc);
            return Err(vm.position_error(e, ins.line, ins.col, m));
        }
        if acts.len() != me + 1 {
            // A block or `chain` activation was pushed: it runs next; this one resumes later.
            return Ok(());
        }
    }
}

/// The cell a Store path of `code` resolves to, from the inline cache when the graph epoch is
/// unchanged, else resolved (without creating anything) by `Graph::store_lookup` and cached. `None` when the path does not exist (the caller falls back to the full helper,
/// which creates cells or reports the error).
/// Execute `v` from the executor: interpreted Blocks and `chain` get activations, compiled
/// Blocks are called (`chained` when a `chain` activation runs them), everything else goes
/// to `Vm::exec_value`.
fn exec(vm: &mut Vm, acts: &mut Vec<Act>, v: Value, chained: bool) -> RtResult<()> {
    vm.maybe_tier_up(v);
    if let Some(b) = vm.block_obj(v) {
        if let Some(entry) = b.native_entry.get() {
            return run_native(vm, v, entry, chained);
        }
        let (module, code) = (b.module, b.code as usize);
        vm.enter_block(v)?;
        let module = Rc::as_ptr(vm.module(module).expect("block of a loaded module"));
        acts.push(Act::Code {
            module,
            code,
            pc: 0,
            is_block: true,
        });
        return Ok(());
    } else if is_chain(v) {
        let first = vm.chain_start()?.unwrap_or(Value::VOID);
        if first.is_executable() {
            acts.push(Act::Chain);
            return exec(vm, acts, first, true);
        }
        return Ok(());
    }
    vm.exec_value(v)
}

fn is_chain(v: Value) -> bool {
    v.as_builtin_obj()
        // SAFETY: builtin objects are VM roots for the VM's whole life.
        .is_some_and(|p| unsafe { (*p.as_ptr()).id } == crate::builtins::BuiltinId::Chain)
}
