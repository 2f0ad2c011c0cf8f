//! Lowering of one SOMA Code to Cranelift IR: one `gen_*` per opcode over the virtual stack of
//! `vstack.rs`.
//!
//! The function built is `extern "C" fn(vm: *mut Vm) -> i32` (a `NativeEntry`): it runs the
//! Code's body in the frame its caller entered and returns `SOMA_OK`, or the status of the
//! first helper that failed, with the error on the VM positioned at the failing instruction.
//!
//! Runtime addresses (helpers, paths, cache lines, the epoch, constants) are embedded as
//! immediates, so the IR does not depend on a `Module` and can be compiled for any 64-bit ISA
//! (the aarch64 check compiles the same IR it would run on x86_64).
//!
//! What is inline: constants, `choose` on virtual operands, small-int `+ - * / % <` with
//! overflow checks, Store reads through an epoch-guarded cache line, `>block`, and the `chain`
//! loop (which calls one helper per iteration and never grows the native stack). Everything
//! else goes through helpers; guarded builtin sites leave native code through a
//! deoptimisation exit when the Store value is no longer the builtin seen at compile time.

use crate::helpers::{self, StoreCache, CACHE_CELL_OFFSET, CACHE_EPOCH_OFFSET};
use crate::vstack::{VEntry, VStack, MAX_VIRTUAL};
use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::{
    self, types, AbiParam, BlockArg, InstBuilder, MemFlagsData, Signature, StackSlotData, StackSlotKind,
};
use cranelift_codegen::isa::{CallConv, TargetFrontendConfig};
use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext};
use soma_runtime::builtins::BuiltinId;
use soma_runtime::decode::{Code, Path};
use soma_runtime::ffi;
use soma_runtime::heap::{BlockObj, CELL_VALUE_OFFSET};
use soma_runtime::vm::JitLayout;
use soma_runtime::opcodes::Opcode;
use soma_runtime::value::{Tag, Value, BOX_BASE, PAYLOAD_MASK};
use std::collections::HashMap;

/// An inline binary Int op in progress (see `Translator::begin_int_binop`).
struct IntBinop {
    a: ir::Value,
    b: ir::Value,
    slow: ir::Block,
    done: ir::Block,
}

const I64: ir::Type = types::I64;
const I32: ir::Type = types::I32;

/// Everything the translator needs to know about one Code and its VM.
pub struct CodeEnv<'a> {
    pub code: &'a Code,
    /// Materialised constants of this Code (`LoadedModule::consts[code]`).
    pub consts: &'a [Value],
    /// The Block value of this Code (a `>block` inside it pushes this).
    pub block: Value,
    /// The module id (errors note it as their source, as the executor does).
    pub module: u32,
    /// Code 0 runs at top level, where `>block` is an error.
    pub is_program: bool,
    /// Address of the graph's structural epoch.
    pub epoch_ptr: *const u64,
    /// One cache line per instruction (only Store-path instructions use theirs).
    pub caches: *mut StoreCache,
    /// For `EXEC_STORE` at index i: the builtin the path held at compile time.
    pub exec_builtins: Vec<Option<(BuiltinId, Value)>>,
    /// When set, entry and every return account time on this clock.
    pub clock: Option<*mut helpers::NativeClock>,
    /// Allow the virtual Register (off after repeated write-through deopts).
    pub virtual_register: bool,
}

/// Build the IR of `env.code` into `func` (whose signature is set here).
pub fn translate(
    func: &mut ir::Function,
    fctx: &mut FunctionBuilderContext,
    env: &CodeEnv,
    frontend: TargetFrontendConfig,
) {
    let call_conv = frontend.default_call_conv;
    func.signature = entry_signature(call_conv);
    let mut b = FunctionBuilder::new(func, fctx);
    let entry = b.create_block();
    b.append_block_params_for_function_params(entry);
    b.switch_to_block(entry);
    b.seal_block(entry);
    let vm = b.block_params(entry)[0];
    let chained = b.block_params(entry)[1];
    let flush_slot = b.create_sized_stack_slot(StackSlotData::new(
        StackSlotKind::ExplicitSlot,
        (MAX_VIRTUAL * 8) as u32,
        3,
    ));
    let out_slot = b.create_sized_stack_slot(StackSlotData::new(StackSlotKind::ExplicitSlot, 8, 3));
    let mut t = Translator {
        b,
        env,
        vm,
        chained,
        body: entry,
        vs: VStack::default(),
        flush_slot,
        out_slot,
        sigs: HashMap::new(),
        call_conv,
        pc: 0,
        reg: None,
        shared_exit: None,
        max_flush: 0,
    };
    if let Some(clock) = env.clock {
        let c = t.iconst(clock as u64);
        t.call(helpers::jit_time_begin as *const () as usize, &[c], None);
    }
    if let Some(plan) = RegPlan::for_code(env.code, env.is_program).filter(|_| env.virtual_register) {
        t.reserve_register(plan);
    }
    // The body starts in a block of its own: a chained run loops back to it (`finish_body`).
    t.body = t.b.create_block();
    t.b.ins().jump(t.body, &[]);
    t.b.switch_to_block(t.body);
    for (pc, ins) in env.code.instrs.iter().enumerate() {
        t.pc = pc;
        let k = ins.operand as usize;
        match ins.op {
            Opcode::Const => t.gen_const(k),
            Opcode::LoadStore => t.gen_load_store(k),
            Opcode::LoadReg => t.gen_load_reg(k),
            Opcode::RefStore => t.gen_path_helper(ffi::soma_rt_ref_store as *const () as usize, k),
            Opcode::RefReg => t.gen_path_helper(ffi::soma_rt_ref_reg as *const () as usize, k),
            Opcode::SetStore => t.gen_set_store(k),
            Opcode::SetReg => t.gen_set_reg(k),
            Opcode::SetrefStore => t.gen_path_helper(ffi::soma_rt_setref_store as *const () as usize, k),
            Opcode::SetrefReg => t.gen_path_helper(ffi::soma_rt_setref_reg as *const () as usize, k),
            Opcode::ExecStore => t.gen_exec_store(k),
            Opcode::ExecReg => t.gen_path_helper(ffi::soma_rt_exec_reg as *const () as usize, k),
            Opcode::ExecConst => t.gen_exec_const(k),
        }
    }
    t.finish_body();
    t.finish_error_exit();
    // Native stack per nested block matters (deep SOMA recursion runs on it): shrink the
    // flush buffer to what was used.
    let (flush_slot, used) = (t.flush_slot, t.max_flush.max(1));
    t.b.seal_all_blocks();
    t.b.finalize(frontend);
    func.sized_stack_slots[flush_slot].size = (used * 8) as u32;
}

/// `fn(vm: *mut Vm, chained: u32) -> i32` (`soma_runtime::heap::NativeEntry`).
pub fn entry_signature(call_conv: CallConv) -> Signature {
    let mut sig = Signature::new(call_conv);
    sig.params.push(AbiParam::new(I64));
    sig.params.push(AbiParam::new(I32));
    sig.returns.push(AbiParam::new(I32));
    sig
}

/// Arithmetic builtins lowered inline, with their `soma_rt_int_arith` op number.
fn arith_op(id: BuiltinId) -> Option<u32> {
    Some(match id {
        BuiltinId::Add => 0,
        BuiltinId::Sub => 1,
        BuiltinId::Mul => 2,
        BuiltinId::Div => 3,
        BuiltinId::Mod => 4,
        _ => return None,
    })
}

/// The AL-form helper of a guarded builtin (used when its operands are not all virtual).
fn al_form_helper(id: BuiltinId) -> usize {
    match id {
        BuiltinId::Add => ffi::soma_rt_add as *const () as usize,
        BuiltinId::Sub => ffi::soma_rt_sub as *const () as usize,
        BuiltinId::Mul => ffi::soma_rt_mul as *const () as usize,
        BuiltinId::Div => ffi::soma_rt_div as *const () as usize,
        BuiltinId::Mod => ffi::soma_rt_mod as *const () as usize,
        BuiltinId::Lt => ffi::soma_rt_lt as *const () as usize,
        BuiltinId::Choose => ffi::soma_rt_choose as *const () as usize,
        BuiltinId::Block => ffi::soma_rt_block as *const () as usize,
        _ => unreachable!("no AL-form helper for {id:?}"),
    }
}

/// Builtins a guarded `EXEC_STORE` site specialises.
pub fn is_specialised(id: BuiltinId) -> bool {
    matches!(
        id,
        BuiltinId::Add
            | BuiltinId::Sub
            | BuiltinId::Mul
            | BuiltinId::Div
            | BuiltinId::Mod
            | BuiltinId::Lt
            | BuiltinId::Choose
            | BuiltinId::Chain
            | BuiltinId::Block
    )
}

struct Translator<'a, 'e> {
    b: FunctionBuilder<'a>,
    env: &'e CodeEnv<'e>,
    vm: ir::Value,
    /// The entry's `chained` argument (nonzero when a `chain` loop runs this Code).
    chained: ir::Value,
    /// First block of the Code's body, after the prologue (a chained run loops back here).
    body: ir::Block,
    vs: VStack,
    flush_slot: ir::StackSlot,
    out_slot: ir::StackSlot,
    sigs: HashMap<(Vec<ir::Type>, Option<ir::Type>), ir::SigRef>,
    call_conv: CallConv,
    /// Index of the instruction being lowered.
    pc: usize,
    /// The virtual Register, when this Code's Register is private (see [`RegPlan`]).
    reg: Option<RegState>,
    /// The shared error exit, once built.
    shared_exit: Option<ir::Block>,
    /// Largest flush emitted (the flush buffer is sized to it at the end).
    max_flush: usize,
}

/// Register virtualisation: a block's Register is fresh per execution and only its own
/// instructions can reach it unless a CellRef to it escapes. When every Register instruction
/// of a Code is `_.x` / `!_.x` with one component (no `_` root, no references, no
/// `>_.x`), each name lives in a shadow-stack slot (a GC root) instead of heap cells. The
/// one case the slots cannot express (`!_.x` of a non-CellRef into a name holding a CellRef:
/// write-through) materialises the Register in the frame and leaves through a deopt exit.
pub struct RegPlan {
    /// Distinct names, in order of first appearance.
    pub names: Vec<Box<str>>,
    /// For each name, the index of a path `_.name` in the Code's path table.
    pub path_of: Vec<usize>,
}

impl RegPlan {
    pub fn for_code(code: &Code, is_program: bool) -> Option<RegPlan> {
        if is_program {
            return None;
        }
        let mut plan = RegPlan {
            names: Vec::new(),
            path_of: Vec::new(),
        };
        for ins in &code.instrs {
            match ins.op {
                Opcode::LoadReg | Opcode::SetReg => {
                    let path = &code.paths[ins.operand as usize];
                    let [name] = &path.components[..] else {
                        return None;
                    };
                    if !plan.names.iter().any(|n| **n == **name) {
                        plan.names.push((**name).into());
                        plan.path_of.push(ins.operand as usize);
                    }
                }
                Opcode::RefReg | Opcode::SetrefReg | Opcode::ExecReg => return None,
                _ => {}
            }
        }
        (!plan.names.is_empty()).then_some(plan)
    }

    fn index(&self, name: &str) -> usize {
        self.names.iter().position(|n| &**n == name).expect("planned name")
    }
}

struct RegState {
    plan: RegPlan,
    /// Address of the first reserved shadow slot (one per name).
    base: ir::Value,
    /// Names written so far (straight-line code: known at every instruction).
    defined: Vec<bool>,
}

impl Translator<'_, '_> {
    // ----- plumbing -----

    fn iconst(&mut self, bits: u64) -> ir::Value {
        self.b.ins().iconst(I64, bits as i64)
    }

    fn sig(&mut self, params: &[ir::Type], ret: Option<ir::Type>) -> ir::SigRef {
        let key = (params.to_vec(), ret);
        if let Some(&s) = self.sigs.get(&key) {
            return s;
        }
        let mut sig = Signature::new(self.call_conv);
        sig.params.extend(params.iter().map(|&t| AbiParam::new(t)));
        sig.returns.extend(ret.map(AbiParam::new));
        let s = self.b.import_signature(sig);
        self.sigs.insert(key, s);
        s
    }

    /// Call the helper at `addr`; returns its result (if any).
    fn call(&mut self, addr: usize, args: &[ir::Value], ret: Option<ir::Type>) -> Option<ir::Value> {
        let params: Vec<ir::Type> = args.iter().map(|&a| self.b.func.dfg.value_type(a)).collect();
        let sig = self.sig(&params, ret);
        let callee = self.iconst(addr as u64);
        let inst = self.b.ins().call_indirect(sig, callee, args);
        self.b.inst_results(inst).first().copied()
    }

    /// Call a status-returning helper.
    fn call_status(&mut self, addr: usize, args: &[ir::Value]) -> ir::Value {
        self.call(addr, args, Some(I32)).expect("status")
    }

    fn out_addr(&mut self) -> ir::Value {
        self.b.ins().stack_addr(I64, self.out_slot, 0)
    }

    fn load_out(&mut self) -> ir::Value {
        self.b.ins().stack_load(I64, I64, self.out_slot, 0)
    }

    fn path_ptr(&self, k: usize) -> u64 {
        &self.env.code.paths[k] as *const Path as u64
    }

    fn cache_ptr(&self) -> u64 {
        // SAFETY: `caches` holds one line per instruction of this Code, and pc < instrs.len().
        unsafe { self.env.caches.add(self.pc) as u64 }
    }

    fn position(&self) -> (u32, u32) {
        let ins = self.env.code.instrs[self.pc];
        (ins.line, ins.col)
    }

    /// Push `entries` (bottom first) onto the real AL.
    fn emit_flush(&mut self, entries: &[VEntry]) {
        if entries.is_empty() {
            return;
        }
        self.max_flush = self.max_flush.max(entries.len());
        for (i, e) in entries.iter().enumerate() {
            self.b.ins().stack_store(I64, e.val, self.flush_slot, (i * 8) as i32);
        }
        let base = self.b.ins().stack_addr(I64, self.flush_slot, 0);
        let n = self.iconst(entries.len() as u64);
        // The status is ignored: pushing cannot fail (a panic would be an allocation abort).
        self.call_status(helpers::jit_push_n as *const () as usize, &[self.vm, base, n]);
    }

    /// Flush the whole virtual stack (before a helper that observes the AL or collects).
    fn flush(&mut self) {
        let entries = self.vs.take_all();
        self.emit_flush(&entries);
    }

    fn vpush(&mut self, val: ir::Value, konst: Option<u64>) {
        if self.vs.len() >= MAX_VIRTUAL {
            self.flush();
        }
        self.vs.push(VEntry { val, konst });
    }

    /// After a helper returned `status`: when it is not OK, flush `pending` (what the executor
    /// would still hold on the AL), position the error at this instruction and return the
    /// status. Continues in a fresh block on success.
    fn check(&mut self, status: ir::Value, pending: &[VEntry]) {
        if pending.is_empty() {
            // Shared exit: one cold block per function positions and returns.
            let fail = self.error_exit();
            let cont = self.b.create_block();
            let (line, col) = self.position();
            let line = self.b.ins().iconst(I32, line as i64);
            let col = self.b.ins().iconst(I32, col as i64);
            let args = [BlockArg::Value(status), BlockArg::Value(line), BlockArg::Value(col)];
            self.b.ins().brif(status, fail, &args, cont, &[]);
            self.b.switch_to_block(cont);
            return;
        }
        let fail = self.b.create_block();
        let cont = self.b.create_block();
        self.b.set_cold_block(fail);
        self.b.ins().brif(status, fail, &[], cont, &[]);
        self.b.switch_to_block(fail);
        self.emit_flush(pending);
        self.emit_error_return(status);
        self.b.switch_to_block(cont);
    }

    /// The function's shared error exit `(status, line, col)`: position the pending error,
    /// release the Register slots, return the status. Created on first use, filled by
    /// `finish_error_exit`.
    fn error_exit(&mut self) -> ir::Block {
        if let Some(b) = self.shared_exit {
            return b;
        }
        let exit = self.b.create_block();
        self.b.set_cold_block(exit);
        for _ in 0..3 {
            self.b.append_block_param(exit, I32);
        }
        self.shared_exit = Some(exit);
        exit
    }

    /// Fill the shared error exit (after the body: a block under construction cannot be left).
    fn finish_error_exit(&mut self) {
        let Some(exit) = self.shared_exit else { return };
        self.b.switch_to_block(exit);
        let p = self.b.block_params(exit).to_vec();
        let module = self.b.ins().iconst(I32, self.env.module as i64);
        self.call(helpers::jit_error_at as *const () as usize, &[self.vm, p[1], p[2], module], None);
        self.emit_return(p[0]);
    }

    /// Position the pending error at this instruction and return `status`.
    fn emit_error_return(&mut self, status: ir::Value) {
        let (line, col) = self.position();
        let line = self.b.ins().iconst(I32, line as i64);
        let col = self.b.ins().iconst(I32, col as i64);
        let module = self.b.ins().iconst(I32, self.env.module as i64);
        self.call(helpers::jit_error_at as *const () as usize, &[self.vm, line, col, module], None);
        self.emit_return(status);
    }

    /// Return `status`, releasing the virtual Register's shadow slots first.
    fn emit_return(&mut self, status: ir::Value) {
        if let Some(n) = self.reg.as_ref().map(|r| r.plan.names.len()) {
            let n = self.iconst(n as u64);
            self.call_status(ffi::soma_rt_shadow_release as *const () as usize, &[self.vm, n]);
        }
        self.emit_time_end();
        self.b.ins().return_(&[status]);
    }

    fn emit_time_end(&mut self) {
        if let Some(clock) = self.env.clock {
            let c = self.iconst(clock as u64);
            self.call(helpers::jit_time_end as *const () as usize, &[c], None);
        }
    }

    /// Reserve one shadow slot per virtual Register name (exhaustion is the recursion error).
    fn reserve_register(&mut self, plan: RegPlan) {
        let n = self.iconst(plan.names.len() as u64);
        let out = self.out_addr();
        let st = self.call_status(ffi::soma_rt_shadow_reserve as *const () as usize, &[self.vm, n, out]);
        // Shadow stack exhausted (deep recursion of blocks with many names): the executor
        // would still run this block with heap Registers, so drop the error and interpret the
        // whole Code (a deopt exit at instruction 0; no slots are held, none released).
        let fail = self.b.create_block();
        let cont = self.b.create_block();
        self.b.set_cold_block(fail);
        self.b.ins().brif(st, fail, &[], cont, &[]);
        self.b.switch_to_block(fail);
        self.call(ffi::soma_rt_error_clear as *const () as usize, &[self.vm], None);
        let block = self.iconst(self.env.block.to_bits());
        let pc = self.iconst(0);
        let st = self.call_status(helpers::jit_resume as *const () as usize, &[self.vm, block, pc]);
        self.emit_time_end();
        self.b.ins().return_(&[st]);
        self.b.switch_to_block(cont);
        let base = self.load_out();
        let defined = vec![false; plan.names.len()];
        self.reg = Some(RegState { plan, base, defined });
    }

    /// Write the defined virtual Register names into the frame's real Register (before a
    /// deopt exit hands the frame to the executor). The AL must be flushed: this allocates
    /// cells at safepoints.
    fn emit_materialize_register(&mut self) {
        let Some(reg) = &self.reg else { return };
        let items: Vec<(usize, usize)> = (0..reg.plan.names.len())
            .filter(|&i| reg.defined[i])
            .map(|i| (i, reg.plan.path_of[i]))
            .collect();
        let base = reg.base;
        for (i, k) in items {
            let v = self.b.ins().load(I64, MemFlagsData::trusted(), base, (i * 8) as i32);
            let path = self.iconst(self.path_ptr(k));
            self.call_status(helpers::jit_reg_init as *const () as usize, &[self.vm, path, v]);
        }
    }

    fn is_cell_ref(&mut self, v: ir::Value) -> ir::Value {
        let h = self.high16(v);
        self.b.ins().icmp_imm_s(IntCC::Equal, h, (Tag::CellRef.high_bits() >> 48) as i64)
    }

    /// SET_REG: into the virtual Register's slot, or through the helper.
    fn gen_set_reg(&mut self, k: usize) {
        let Some(i) = self.reg.as_ref().map(|r| r.plan.index(&self.env.code.paths[k].components[0])) else {
            return self.gen_path_helper(ffi::soma_rt_set_reg as *const () as usize, k);
        };
        // The value: the virtual top (peeked: a deopt must still find it on the AL), else
        // popped from the real AL (underflow error as the executor).
        let (v, peeked) = match self.vs.entries().last() {
            Some(e) => (e.val, true),
            None => {
                let path = self.iconst(self.path_ptr(k));
                let out = self.out_addr();
                let st = self.call_status(helpers::jit_pop_for_store as *const () as usize, &[self.vm, path, out]);
                self.check(st, &[]);
                (self.load_out(), false)
            }
        };
        let (base, was_defined) = {
            let r = self.reg.as_ref().expect("virtual register");
            (r.base, r.defined[i])
        };
        let flags = MemFlagsData::trusted();
        if was_defined {
            // Write-through case: old value a CellRef, new value not one.
            let old = self.b.ins().load(I64, flags, base, (i * 8) as i32);
            let old_ref = self.is_cell_ref(old);
            let new_ref = self.is_cell_ref(v);
            let through = self.b.ins().band_not(old_ref, new_ref);
            let deopt = self.b.create_block();
            let cont = self.b.create_block();
            self.b.set_cold_block(deopt);
            self.b.ins().brif(through, deopt, &[], cont, &[]);
            self.b.switch_to_block(deopt);
            if !peeked {
                self.emit_flush(&[VEntry { val: v, konst: None }]);
            }
            self.emit_deopt();
            self.b.switch_to_block(cont);
        }
        self.b.ins().store(flags, v, base, (i * 8) as i32);
        if peeked {
            self.vs.pop();
        }
        self.reg.as_mut().expect("virtual register").defined[i] = true;
    }

    /// Flush, then call a `(vm, path) -> status` helper that works on the AL.
    fn gen_path_helper(&mut self, addr: usize, k: usize) {
        self.flush();
        let path = self.iconst(self.path_ptr(k));
        let st = self.call_status(addr, &[self.vm, path]);
        self.check(st, &[]);
    }

    /// Flush, then call a `(vm) -> status` AL-form builtin helper.
    fn gen_al_builtin(&mut self, addr: usize) {
        self.flush();
        let st = self.call_status(addr, &[self.vm]);
        self.check(st, &[]);
    }

    /// Deoptimisation exit: flush the virtual stack (the executor's AL before this
    /// instruction) and interpret the rest of the Code from here; return its status.
    fn emit_deopt(&mut self) {
        let entries: Vec<VEntry> = self.vs.entries().to_vec();
        self.emit_flush(&entries);
        self.emit_materialize_register();
        // The slots are released before the executor takes over (it may reserve its own
        // through compiled callees, in LIFO order).
        if let Some(n) = self.reg.as_ref().map(|r| r.plan.names.len()) {
            let n = self.iconst(n as u64);
            self.call_status(ffi::soma_rt_shadow_release as *const () as usize, &[self.vm, n]);
        }
        let block = self.iconst(self.env.block.to_bits());
        let pc = self.iconst(self.pc as u64);
        let st = self.call_status(helpers::jit_resume as *const () as usize, &[self.vm, block, pc]);
        self.emit_time_end();
        self.b.ins().return_(&[st]);
    }

    // ----- value tests -----

    fn high16(&mut self, v: ir::Value) -> ir::Value {
        self.b.ins().ushr_imm_s(v, 48)
    }

    /// Nonzero when `v` is a small Int.
    fn is_small_int(&mut self, v: ir::Value) -> ir::Value {
        let h = self.high16(v);
        self.b.ins().icmp_imm_s(IntCC::Equal, h, (Tag::Int.high_bits() >> 48) as i64)
    }

    /// Nonzero when `v` is a Block or a builtin.
    fn is_executable(&mut self, v: ir::Value) -> ir::Value {
        let h = self.high16(v);
        let d = self.b.ins().iadd_imm_s(h, -((Tag::Block.high_bits() >> 48) as i64));
        self.b.ins().icmp_imm_s(IntCC::UnsignedLessThanOrEqual, d, 1)
    }

    /// Sign-extend the 48-bit payload.
    fn unbox_int(&mut self, v: ir::Value) -> ir::Value {
        let s = self.b.ins().ishl_imm_s(v, 16);
        self.b.ins().sshr_imm_s(s, 16)
    }

    fn box_int(&mut self, i: ir::Value) -> ir::Value {
        let p = self.b.ins().band_imm_s(i, PAYLOAD_MASK as i64);
        self.b.ins().bor_imm_s(p, Tag::Int.high_bits() as i64)
    }

    /// Nonzero when the i64 `i` fits in a small int.
    fn fits_small(&mut self, i: ir::Value) -> ir::Value {
        let s = self.unbox_int(i);
        self.b.ins().icmp(IntCC::Equal, s, i)
    }

    // ----- Store cache -----

    /// The value of Store path `k` through this instruction's cache line. When the path was
    /// never created, `on_undefined` is emitted (it must end the block).
    fn cached_store_value(&mut self, k: usize, on_undefined: impl FnOnce(&mut Self)) -> ir::Value {
        if self.env.is_program {
            // The program runs once: a helper read is smaller and compiles faster.
            let path = self.iconst(self.path_ptr(k));
            let out = self.out_addr();
            let st = self.call_status(helpers::jit_read_store as *const () as usize, &[self.vm, path, out]);
            let pending: Vec<VEntry> = self.vs.entries().to_vec();
            self.check(st, &pending);
            return self.load_out();
        }
        let flags = MemFlagsData::trusted();
        let cache = self.iconst(self.cache_ptr());
        let epoch_addr = self.iconst(self.env.epoch_ptr as u64);
        let epoch = self.b.ins().load(I64, flags, epoch_addr, 0);
        let cached = self.b.ins().load(I64, flags, cache, CACHE_EPOCH_OFFSET);
        let hit = self.b.ins().icmp(IntCC::Equal, epoch, cached);
        let hit_b = self.b.create_block();
        let miss_b = self.b.create_block();
        let undef_b = self.b.create_block();
        let have = self.b.create_block();
        let cell = self.b.append_block_param(have, I64);
        self.b.set_cold_block(miss_b);
        self.b.set_cold_block(undef_b);
        self.b.ins().brif(hit, hit_b, &[], miss_b, &[]);

        self.b.switch_to_block(hit_b);
        let c = self.b.ins().load(I64, flags, cache, CACHE_CELL_OFFSET);
        self.b.ins().jump(have, &[BlockArg::Value(c)]);

        self.b.switch_to_block(miss_b);
        let path = self.iconst(self.path_ptr(k));
        let c = self
            .call(helpers::jit_resolve_store as *const () as usize, &[self.vm, path, cache], Some(I64))
            .expect("cell");
        self.b.ins().brif(c, have, &[BlockArg::Value(c)], undef_b, &[]);

        self.b.switch_to_block(undef_b);
        on_undefined(self);

        self.b.switch_to_block(have);
        self.b.ins().load(I64, flags, cell, CELL_VALUE_OFFSET as i32)
    }

    /// Emit the `Undefined Store path` error exit (the virtual stack is what the executor
    /// holds).
    fn emit_undefined_store(&mut self, k: usize) {
        let entries: Vec<VEntry> = self.vs.entries().to_vec();
        self.emit_flush(&entries);
        let path = self.iconst(self.path_ptr(k));
        let st = self.call_status(helpers::jit_undefined_store as *const () as usize, &[self.vm, path]);
        self.emit_error_return(st);
    }

    /// End of the Code. The virtual stack goes to the AL and the function returns OK, except
    /// in a chained run (a `chain` loop is running this Code) whose result on top is this
    /// very Block: the loop would pop it and run it again, so the code runs that next
    /// iteration itself without growing anything (see `heap::NativeEntry`).
    fn finish_body(&mut self) {
        let self_bits = self.env.block.to_bits();
        let top = self.vs.entries().last().copied();
        let may_loop = !self.env.is_program && top.is_some_and(|e| e.konst.is_none_or(|k| k == self_bits));
        if !may_loop {
            self.flush();
            let ok = self.b.ins().iconst(I32, ffi::SOMA_OK as i64);
            self.emit_return(ok);
            return;
        }
        let top = self.vs.pop().expect("checked");
        self.flush();
        let is_self = self.b.ins().icmp_imm_s(IntCC::Equal, top.val, self_bits as i64);
        let chained = self.chained_flag();
        let again = self.b.ins().band(is_self, chained);
        let loop_b = self.b.create_block();
        let ret_b = self.b.create_block();
        self.b.ins().brif(again, loop_b, &[], ret_b, &[]);

        self.b.switch_to_block(ret_b);
        self.emit_flush(&[top]);
        let ok = self.b.ins().iconst(I32, ffi::SOMA_OK as i64);
        self.emit_return(ok);

        self.b.switch_to_block(loop_b);
        self.emit_reenter();
        self.b.ins().jump(self.body, &[]);
    }

    /// Nonzero (as an i8 truth value) when this run is chained.
    fn chained_flag(&mut self) -> ir::Value {
        self.b.ins().icmp_imm_s(IntCC::NotEqual, self.chained, 0)
    }

    /// The block-entry bookkeeping of the next chained iteration (`Vm::enter_block` for the
    /// same Block at the same depth): poll countdown, execution count, fresh Register.
    fn emit_reenter(&mut self) {
        let flags = MemFlagsData::trusted();
        let off = JitLayout::POLL_COUNTDOWN;
        let n = self.b.ins().load(I32, flags, self.vm, off);
        let n = self.b.ins().iadd_imm_s(n, -1);
        self.b.ins().store(flags, n, self.vm, off);
        let poll_b = self.b.create_block();
        let cont = self.b.create_block();
        self.b.set_cold_block(poll_b);
        self.b.ins().brif(n, cont, &[], poll_b, &[]);
        self.b.switch_to_block(poll_b);
        let st = self.call_status(helpers::jit_poll as *const () as usize, &[self.vm]);
        // A failed poll fails the block entry: the error is the caller's, positioned at its
        // `chain` (as when `Vm::enter_block` fails), so it is returned unpositioned.
        let fail = self.b.create_block();
        self.b.set_cold_block(fail);
        self.b.ins().brif(st, fail, &[], cont, &[]);
        self.b.switch_to_block(fail);
        self.emit_return(st);
        self.b.switch_to_block(cont);

        let obj = self.env.block.as_block_obj().expect("a compiled Block").as_ptr();
        let count = self.iconst(obj as u64 + std::mem::offset_of!(BlockObj, exec_count) as u64);
        let c = self.b.ins().load(I64, flags, count, 0);
        let c = self.b.ins().iadd_imm_s(c, 1);
        self.b.ins().store(flags, c, count, 0);
        let heap_register = self.reg.is_none()
            && self.env.code.instrs.iter().any(|i| {
                matches!(
                    i.op,
                    Opcode::LoadReg | Opcode::SetReg | Opcode::RefReg | Opcode::SetrefReg | Opcode::ExecReg
                )
            });
        if heap_register {
            self.call_status(helpers::jit_restart_frame as *const () as usize, &[self.vm]);
        }
    }

    // ----- one gen_* per opcode -----

    /// CONST: a virtual push of the constant's bits (constants are module roots).
    fn gen_const(&mut self, k: usize) {
        let bits = self.env.consts[k].to_bits();
        let v = self.iconst(bits);
        self.vpush(v, Some(bits));
    }

    /// LOAD_STORE: inline read through the epoch-guarded cache line.
    fn gen_load_store(&mut self, k: usize) {
        let v = self.cached_store_value(k, |t| t.emit_undefined_store(k));
        self.vpush(v, None);
    }

    /// LOAD_REG: value-form read (no AL traffic, never collects).
    fn gen_load_reg(&mut self, k: usize) {
        if let Some(r) = &self.reg {
            let i = r.plan.index(&self.env.code.paths[k].components[0]);
            if r.defined[i] {
                let v = self.b.ins().load(I64, MemFlagsData::trusted(), r.base, (i * 8) as i32);
                self.vpush(v, None);
                return;
            }
            // Never written in this execution: the real (empty) Register gives the error.
        }
        let path = self.iconst(self.path_ptr(k));
        let out = self.out_addr();
        let st = self.call_status(helpers::jit_read_reg as *const () as usize, &[self.vm, path, out]);
        let pending: Vec<VEntry> = self.vs.entries().to_vec();
        self.check(st, &pending);
        let v = self.load_out();
        self.vpush(v, None);
    }

    /// SET_STORE: flush, then the cached-write helper (a safepoint, like the executor's).
    fn gen_set_store(&mut self, k: usize) {
        if let Some(e) = self.vs.pop() {
            return self.gen_set_store_value(k, e.val);
        }
        self.flush();
        let path = self.iconst(self.path_ptr(k));
        let cache = self.iconst(self.cache_ptr());
        let st = self.call_status(helpers::jit_set_store as *const () as usize, &[self.vm, path, cache]);
        self.check(st, &[]);
    }

    /// SET_STORE of a virtual value: an inline store into the cached cell when neither the old
    /// nor the new value is a CellRef (no write-through, no epoch change), else the
    /// value-form helper. Nothing is flushed: neither path collects.
    fn gen_set_store_value(&mut self, k: usize, v: ir::Value) {
        if self.env.is_program {
            let path = self.iconst(self.path_ptr(k));
            let cache = self.iconst(self.cache_ptr());
            let st = self.call_status(
                helpers::jit_set_store_value as *const () as usize,
                &[self.vm, path, cache, v],
            );
            let pending: Vec<VEntry> = self.vs.entries().to_vec();
            self.check(st, &pending);
            return;
        }
        let flags = MemFlagsData::trusted();
        let cache = self.iconst(self.cache_ptr());
        let epoch_addr = self.iconst(self.env.epoch_ptr as u64);
        let epoch = self.b.ins().load(I64, flags, epoch_addr, 0);
        let cached = self.b.ins().load(I64, flags, cache, CACHE_EPOCH_OFFSET);
        let hit = self.b.ins().icmp(IntCC::Equal, epoch, cached);
        let hit_b = self.b.create_block();
        let slow = self.b.create_block();
        let store_b = self.b.create_block();
        let done = self.b.create_block();
        self.b.set_cold_block(slow);
        self.b.ins().brif(hit, hit_b, &[], slow, &[]);

        self.b.switch_to_block(hit_b);
        let cell = self.b.ins().load(I64, flags, cache, CACHE_CELL_OFFSET);
        let old = self.b.ins().load(I64, flags, cell, CELL_VALUE_OFFSET as i32);
        let old_ref = self.is_cell_ref(old);
        let new_ref = self.is_cell_ref(v);
        let any_ref = self.b.ins().bor(old_ref, new_ref);
        self.b.ins().brif(any_ref, slow, &[], store_b, &[]);

        self.b.switch_to_block(store_b);
        self.b.ins().store(flags, v, cell, CELL_VALUE_OFFSET as i32);
        self.b.ins().jump(done, &[]);

        self.b.switch_to_block(slow);
        let path = self.iconst(self.path_ptr(k));
        let st = self.call_status(
            helpers::jit_set_store_value as *const () as usize,
            &[self.vm, path, cache, v],
        );
        let pending: Vec<VEntry> = self.vs.entries().to_vec();
        self.check(st, &pending);
        self.b.ins().jump(done, &[]);

        self.b.switch_to_block(done);
    }

    /// EXEC_CONST: run a block literal through the exec helper.
    fn gen_exec_const(&mut self, k: usize) {
        self.flush();
        let v = self.iconst(self.env.consts[k].to_bits());
        let st = self.call_status(helpers::jit_exec as *const () as usize, &[self.vm, v]);
        self.check(st, &[]);
    }

    /// EXEC_STORE: read through the cache; a site whose path held a specialised builtin at
    /// compile time is guarded on the value's identity (deopt exit when rebound) and lowered
    /// inline; anything else is flushed and executed by the helper.
    fn gen_exec_store(&mut self, k: usize) {
        let v = self.cached_store_value(k, |t| t.emit_undefined_store(k));
        let spec = self.env.exec_builtins.get(self.pc).copied().flatten();
        let Some((id, bits)) = spec.filter(|(id, _)| is_specialised(*id)) else {
            self.flush();
            let st = self.call_status(helpers::jit_exec as *const () as usize, &[self.vm, v]);
            self.check(st, &[]);
            return;
        };
        let same = self.b.ins().icmp_imm_s(IntCC::Equal, v, bits.to_bits() as i64);
        let fast = self.b.create_block();
        let deopt = self.b.create_block();
        self.b.set_cold_block(deopt);
        self.b.ins().brif(same, fast, &[], deopt, &[]);
        self.b.switch_to_block(deopt);
        self.emit_deopt();
        self.b.switch_to_block(fast);
        self.gen_builtin(id);
    }

    /// A guarded builtin, lowered inline where its operands are virtual.
    fn gen_builtin(&mut self, id: BuiltinId) {
        match id {
            BuiltinId::Chain => self.gen_chain(),
            BuiltinId::Choose if self.vs.len() >= 3 => self.gen_choose(),
            BuiltinId::Lt if self.vs.len() >= 2 => self.gen_lt(),
            BuiltinId::Block if !self.env.is_program => {
                let bits = self.env.block.to_bits();
                let v = self.iconst(bits);
                self.vpush(v, Some(bits));
            }
            _ => match arith_op(id) {
                Some(op) if self.vs.len() >= 2 => self.gen_arith(op),
                _ => self.gen_al_builtin(al_form_helper(id)),
            },
        }
    }

    /// `choose` on three virtual operands: a select, nothing called.
    fn gen_choose(&mut self) {
        let [c, t, f]: [VEntry; 3] = self.vs.pop_n(3).try_into().expect("3 entries");
        if let Some(cb) = c.konst {
            // SAFETY: compile-time constant bits are live values (module constants).
            let truthy = unsafe { Value::from_bits(cb) }.is_truthy();
            self.vpush(
                if truthy { t.val } else { f.val },
                if truthy { t.konst } else { f.konst },
            );
            return;
        }
        // Falsy values are exactly Void, Nil, False: BOX_BASE + 0..=2.
        let d = self.b.ins().iadd_imm_s(c.val, -(BOX_BASE as i64));
        let truthy = self.b.ins().icmp_imm_s(IntCC::UnsignedGreaterThan, d, 2);
        let r = self.b.ins().select(truthy, t.val, f.val);
        let konst = match (t.konst, f.konst) {
            (Some(a), Some(b)) if a == b => Some(a),
            _ => None,
        };
        self.vpush(r, konst);
    }

    /// Small-int `+ - * / %` with overflow checks; other operands (BigInts, wrong types, zero
    /// divisors, overflowing results) go to `soma_rt_int_arith`, which never collects.
    fn gen_arith(&mut self, op: u32) {
        let IntBinop { a, b: bv, slow, done } = self.begin_int_binop();
        let x = self.unbox_int(a);
        let y = self.unbox_int(bv);
        let r = match op {
            0 => self.b.ins().iadd(x, y),
            1 => self.b.ins().isub(x, y),
            2 => {
                let (r, of) = self.b.ins().smul_overflow(x, y);
                let next = self.b.create_block();
                self.b.ins().brif(of, slow, &[], next, &[]);
                self.b.switch_to_block(next);
                r
            }
            _ => {
                // Floor division / modulo (Python): divisor zero goes to the slow path for
                // its error.
                let next = self.b.create_block();
                self.b.ins().brif(y, next, &[], slow, &[]);
                self.b.switch_to_block(next);
                let q = self.b.ins().sdiv(x, y);
                let m = self.b.ins().srem(x, y);
                let nz = self.b.ins().icmp_imm_s(IntCC::NotEqual, m, 0);
                let sx = self.b.ins().bxor(m, y);
                let neg = self.b.ins().icmp_imm_s(IntCC::SignedLessThan, sx, 0);
                let adjust = self.b.ins().band(nz, neg);
                if op == 3 {
                    let one = self.b.ins().uextend(I64, adjust);
                    self.b.ins().isub(q, one)
                } else {
                    let zero = self.iconst(0);
                    let add = self.b.ins().select(adjust, y, zero);
                    self.b.ins().iadd(m, add)
                }
            }
        };
        let fits = self.fits_small(r);
        let boxed = self.box_int(r);
        self.b.ins().brif(fits, done, &[BlockArg::Value(boxed)], slow, &[]);

        self.b.switch_to_block(slow);
        let opv = self.b.ins().iconst(I32, op as i64);
        let out = self.out_addr();
        let args = [self.vm, opv, a, bv, out];
        self.finish_int_binop(done, ffi::soma_rt_int_arith as *const () as usize, &args);
    }

    /// `<` on two virtual operands: inline for small ints, else `soma_rt_lt_values`.
    fn gen_lt(&mut self) {
        let IntBinop { a, b: bv, slow, done } = self.begin_int_binop();
        let x = self.unbox_int(a);
        let y = self.unbox_int(bv);
        let lt = self.b.ins().icmp(IntCC::SignedLessThan, x, y);
        let t = self.iconst(Value::TRUE.to_bits());
        let f = self.iconst(Value::FALSE.to_bits());
        let r = self.b.ins().select(lt, t, f);
        self.b.ins().jump(done, &[BlockArg::Value(r)]);

        self.b.switch_to_block(slow);
        let out = self.out_addr();
        let args = [self.vm, a, bv, out];
        self.finish_int_binop(done, ffi::soma_rt_lt_values as *const () as usize, &args);
    }

    /// Start an inline binary Int op: pop its two operands and branch to a fast block (now
    /// current) when both are small ints, else to the returned cold `slow` block. Every path
    /// ends by jumping to `done` with the boxed result (see [`Self::finish_int_binop`]).
    fn begin_int_binop(&mut self) -> IntBinop {
        let [a, b]: [VEntry; 2] = self.vs.pop_n(2).try_into().expect("2 entries");
        let (a, b) = (a.val, b.val);
        let done = self.b.create_block();
        self.b.append_block_param(done, I64);
        let fast = self.b.create_block();
        let slow = self.b.create_block();
        self.b.set_cold_block(slow);
        let a_ok = self.is_small_int(a);
        let b_ok = self.is_small_int(b);
        let both = self.b.ins().band(a_ok, b_ok);
        self.b.ins().brif(both, fast, &[], slow, &[]);
        self.b.switch_to_block(fast);
        IntBinop { a, b, slow, done }
    }

    /// End an inline binary Int op in its (current) slow block: call the status helper at
    /// `helper`, which writes the result to the out slot, then continue in `done` with the
    /// result pushed on the virtual stack.
    fn finish_int_binop(&mut self, done: ir::Block, helper: usize, args: &[ir::Value]) {
        let st = self.call_status(helper, args);
        let pending: Vec<VEntry> = self.vs.entries().to_vec();
        self.check(st, &pending);
        let r = self.load_out();
        self.b.ins().jump(done, &[BlockArg::Value(r)]);
        self.b.switch_to_block(done);
        let result = self.b.block_params(done)[0];
        self.vpush(result, None);
    }

    /// `>chain` as a native loop: one `jit_chain_step` call per iteration (the executed block
    /// returns before the next starts, so the native stack does not grow).
    fn gen_chain(&mut self) {
        let first = if let Some(top) = self.vs.pop() {
            self.flush();
            let exe = self.is_executable(top.val);
            let push_back = self.b.create_block();
            let start = self.b.create_block();
            let start_v = self.b.append_block_param(start, I64);
            self.b.ins().brif(exe, start, &[BlockArg::Value(top.val)], push_back, &[]);
            // A non-executable value first popped is pushed back and the chain is over.
            self.b.switch_to_block(push_back);
            self.emit_flush(&[top]);
            let zero = self.iconst(Value::VOID.to_bits());
            self.b.ins().jump(start, &[BlockArg::Value(zero)]);
            self.b.switch_to_block(start);
            start_v
        } else {
            self.flush();
            let out = self.out_addr();
            let st = self.call_status(ffi::soma_rt_chain_start as *const () as usize, &[self.vm, out]);
            self.check(st, &[]);
            self.load_out()
        };
        let head = self.b.create_block();
        let v = self.b.append_block_param(head, I64);
        let body = self.b.create_block();
        let exit = self.b.create_block();
        self.b.ins().jump(head, &[BlockArg::Value(first)]);

        self.b.switch_to_block(head);
        let exe = self.is_executable(v);
        self.b.ins().brif(exe, body, &[], exit, &[]);

        self.b.switch_to_block(body);
        let out = self.out_addr();
        let st = self.call_status(helpers::jit_chain_step as *const () as usize, &[self.vm, v, out]);
        self.check(st, &[]);
        let next = self.load_out();
        self.b.ins().jump(head, &[BlockArg::Value(next)]);

        self.b.switch_to_block(exit);
    }
}
