//! Lowering of one SOMA Code to Cranelift IR: one `gen_*` per opcode over the virtual stack of
//! `vstack.rs`, with small Blocks inlined where the executed value is known.
//!
//! The function built is `extern "C" fn(vm: *mut Vm, chained: u32) -> i32` (a `NativeEntry`):
//! it runs the Code's body in the frame its caller entered and returns `SOMA_OK`, or the
//! status of the first helper that failed, with the error on the VM positioned at the failing
//! instruction.
//!
//! Runtime addresses (helpers, paths, cache lines, the epoch, constants) are embedded as
//! immediates, so the IR does not depend on a `Module` and can be compiled for any 64-bit ISA
//! (the aarch64 check compiles the same IR it would run on x86_64).
//!
//! What is inline: constants, `choose` on virtual operands, small-int `+ - * / % <` with
//! overflow checks, Store reads through an epoch-guarded cache line, `>block`, the `chain`
//! loop (which calls one helper per iteration and never grows the native stack), and the
//! bodies of small Blocks executed where the value is known at compile time (a guarded Store
//! path, a block literal, or a Register name holding one of two block literals picked by
//! `choose`, the shape of the stdlib's `^`, `if` and `ifelse`). Everything else goes through
//! helpers; guarded sites leave native code through a deoptimisation exit when the Store value
//! is no longer the one seen at compile time.
//!
//! # Levels
//! The compiled Code is level 0; a body inlined into level n is level n + 1. Every level has
//! a real VM frame (an inlined body enters and leaves one through a helper, which keeps the
//! depth limit, `>block` and the heap Register helpers exact), but its Register can live in
//! shadow slots ([`RegMode::Virtual`]). The stdlib's context passing, `_.` in one Block and
//! `!_.` in a Block it runs, becomes [`RegMode::Alias`]: the inner level reads and writes
//! the outer level's slots, and no cell or CellRef exists until an error or a
//! deoptimisation exit materialises the Registers of every level into their frames.
//!
//! Shapes the translator does not model (a virtual `_.` that would escape, two inlined
//! branches that leave the Registers differently) make it bail out; the compiler then
//! translates the Code again without inlining, and without virtual Registers if need be.

use crate::helpers::{
    self, ExitDesc, ExitKind, ExitLevel, ExitReg, ResumePoint, StoreCache, CACHE_CELL_OFFSET, CACHE_EPOCH_OFFSET,
};
use crate::vstack::{VEntry, VStack, MAX_VIRTUAL};
use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::{
    self, types, AbiParam, BlockArg, InstBuilder, MemFlagsData, Signature, StackSlotData, StackSlotKind,
};
use cranelift_codegen::isa::{CallConv, TargetFrontendConfig};
use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext};
use soma_runtime::builtins::BuiltinId;
use soma_runtime::decode::{Code, Instr, Path};
use soma_runtime::ffi;
use soma_runtime::heap::{BlockObj, CELL_VALUE_OFFSET};
use soma_runtime::opcodes::Opcode;
use soma_runtime::value::{Tag, Value, BOX_BASE, PAYLOAD_MASK};
use soma_runtime::vm::{JitLayout, SHADOW_STACK_SLOTS};
use soma_runtime::Vm;
use std::collections::HashMap;

/// An inline binary Int op in progress (see `Translator::begin_int_binop`).
struct IntBinop {
    a: ir::Value,
    b: ir::Value,
    /// The operands' integers (valid in the fast block).
    x: ir::Value,
    y: ir::Value,
    slow: ir::Block,
    done: ir::Block,
}

const I64: ir::Type = types::I64;
const I32: ir::Type = types::I32;

/// Inlined Blocks nest at most this deep below the compiled Code...
pub const MAX_INLINE_DEPTH: usize = 2;
/// ...and together have at most this many instructions: code size and compile time grow with
/// every inlined instruction (each brings its own guards and exits). 16 covers the stdlib's
/// `^`, `if` and `ifelse` with both of their branches in fib- and collatz-sized code.
pub const INLINE_BUDGET: usize = 16;

/// Everything the translator needs to know about the Code compiled and its VM.
pub struct CodeEnv<'a> {
    /// Read at compile time: the Store values guarded sites specialise on, inlined Codes.
    pub vm: &'a Vm,
    /// The Block compiled (code 0 of a module is its program, run at top level).
    pub block: Value,
    /// Address of the graph's structural epoch.
    pub epoch_ptr: *const u64,
    /// When set, entry and every return account time on this clock.
    pub clock: Option<*mut helpers::NativeClock>,
    /// Allow virtual Registers (off after repeated write-through deopts).
    pub virtual_register: bool,
    /// Allow inlining (off after repeated deopts inside inlined bodies).
    pub inline: bool,
    /// Baseline code of a Block the optimizing tier may take over: on the entry (or chained
    /// round) that brings its execution count to this, the code asks for the optimized
    /// compile (`jit_note_hot`). `None` in optimized code and when that tier is off.
    pub hot_at: Option<u64>,
}

/// Memory the compiled code refers to (the JIT keeps it as long as the code), and counts.
#[derive(Default)]
pub struct Translated {
    pub cache_lines: Vec<Box<StoreCache>>,
    pub resume_points: Vec<Box<[ResumePoint]>>,
    /// Blocks of virtual frames made real around calls of unknown values.
    pub frame_lists: Vec<Box<[u64]>>,
    /// Error and deoptimisation exits.
    pub exits: Vec<Box<ExitDesc>>,
    /// Block executions inlined.
    pub inlined: usize,
    /// The Store identities the code speculates on: each guarded `EXEC_STORE` path (as
    /// components) and the bits of the builtin or Block it held at compile time. Code
    /// installed later than it was translated (background compilation) is stale when one of
    /// them no longer holds.
    pub assumptions: Vec<(Vec<String>, u64)>,
    /// Set to 1 when newer code for the same Block is installed: a chained run of this code
    /// then leaves its in-place loop at the next round, so the `chain` loop calls the newer
    /// code (the compiled code reads it at every back edge, and sets it to 2 when it leaves).
    pub superseded: Box<std::cell::Cell<u64>>,
}

/// Why a translation gave up (the compiler retries with less ambition).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bail(pub &'static str);

/// Build the IR of `env.block`'s Code into `func` (whose signature is set here).
pub fn translate(
    func: &mut ir::Function,
    fctx: &mut FunctionBuilderContext,
    env: &CodeEnv,
    frontend: TargetFrontendConfig,
) -> Result<Translated, Bail> {
    let bo = env.vm.block_obj(env.block).ok_or(Bail("not a Block"))?;
    let m = env.vm.module(bo.module).ok_or(Bail("unknown module"))?;
    let code_index = bo.code as usize;
    let code = m.module.codes.get(code_index).ok_or(Bail("unknown code"))?;
    let is_program = code_index == 0;
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
    let reg = if env.virtual_register && !is_program && reg_eligible(code) {
        RegMode::Virtual(Vec::new())
    } else {
        RegMode::Heap
    };
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
        levels: vec![Level {
            code,
            consts: &m.consts[code_index],
            block: env.block,
            module: bo.module,
            is_program,
            pc: 0,
            call_pc: 0,
            reg,
            virtual_frame: false,
        }],
        slots: None,
        slot_count: 0,
        slot_count_uses: Vec::new(),
        slot_memo: HashMap::new(),
        shared_exit: None,
        max_flush: 0,
        bail: None,
        inlined_instrs: 0,
        exits: HashMap::new(),
        exit_bodies: Vec::new(),
        out: Translated::default(),
    };
    if let Some(clock) = env.clock {
        let c = t.iconst(clock as u64);
        t.call(helpers::jit_time_begin as *const () as usize, &[c], None);
    }
    if t.needs_slots() {
        t.reserve_slots();
    }
    if !is_program {
        if let Some(n) = env.hot_at {
            let count = t.load_own_exec_count();
            t.emit_hot_check(count, n);
        }
    }
    // The body starts in a block of its own: a chained run loops back to it (`finish_body`).
    t.body = t.b.create_block();
    t.b.ins().jump(t.body, &[]);
    t.b.switch_to_block(t.body);
    for (pc, &ins) in code.instrs.iter().enumerate() {
        t.levels[0].pc = pc;
        t.gen_instr(ins);
        if let Some(reason) = t.bail {
            // The state may no longer make sense (a `_.` of an ended level): stop here.
            return Err(reason);
        }
    }
    t.finish_body();
    t.finish_error_exit();
    t.finish_exits();
    // Native stack per nested block matters (deep SOMA recursion runs on it): shrink the
    // flush buffer to what was used.
    let (flush_slot, used) = (t.flush_slot, t.max_flush.max(1));
    let slot_count = t.slot_count;
    let uses = std::mem::take(&mut t.slot_count_uses);
    if let Some(reason) = t.bail {
        return Err(reason);
    }
    let mut out = std::mem::take(&mut t.out);
    for exit in &mut out.exits {
        exit.slot_count = slot_count;
    }
    t.b.seal_all_blocks();
    t.b.finalize(frontend);
    for inst in uses {
        func.dfg.insts[inst] = ir::InstructionData::UnaryImm {
            opcode: ir::Opcode::Iconst,
            imm: ir::immediates::Imm64::new(slot_count as i64),
        };
    }
    func.sized_stack_slots[flush_slot].size = (used * 8) as u32;
    Ok(out)
}

/// `fn(vm: *mut Vm, chained: u32) -> i32` (`soma_runtime::heap::NativeEntry`).
pub fn entry_signature(call_conv: CallConv) -> Signature {
    let mut sig = Signature::new(call_conv);
    sig.params.push(AbiParam::new(I64));
    sig.params.push(AbiParam::new(I32));
    sig.returns.push(AbiParam::new(I32));
    sig
}

/// Whether a Code's Register can start virtual: it writes only names right below `_`, takes
/// no CellRef to a name (`_.` itself is modelled, see the module docs), and reads names or
/// paths below them (`_.h.key`: a virtual name has no children, so that is a read below the
/// cell its value refers to).
fn reg_eligible(code: &Code) -> bool {
    code.instrs.iter().all(|ins| {
        let comps = || code.paths[ins.operand as usize].components.len();
        match ins.op {
            Opcode::LoadReg | Opcode::ExecReg => comps() >= 1,
            Opcode::SetReg => comps() == 1,
            Opcode::RefReg | Opcode::SetrefReg => comps() == 0,
            _ => true,
        }
    })
}

fn has_register_instrs(code: &Code) -> bool {
    code.instrs.iter().any(|i| {
        matches!(
            i.op,
            Opcode::LoadReg | Opcode::SetReg | Opcode::RefReg | Opcode::SetrefReg | Opcode::ExecReg
        )
    })
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

/// A Code being translated: the compiled one (level 0) or a body inlined into it.
struct Level<'e> {
    code: &'e Code,
    consts: &'e [Value],
    block: Value,
    module: u32,
    /// Code 0 runs at top level, where `>block` is an error.
    is_program: bool,
    /// Index of the instruction being lowered.
    pc: usize,
    /// In the level above, the index of the instruction that executes this body.
    call_pc: usize,
    reg: RegMode,
    /// The level's frame is only counted in the VM's depth, not pushed (see
    /// [`Translator::frame_is_optional`]); levels with virtual frames are always the
    /// innermost ones.
    virtual_frame: bool,
}

/// Where a level's Register lives.
#[derive(Clone, Debug)]
enum RegMode {
    /// In the level's real frame, through the helpers.
    Heap,
    /// In shadow slots, one per name (none exists in the real frame).
    Virtual(Vec<RegName>),
    /// `!_.` made the root hold a CellRef to the root of level n, which is virtual: names are
    /// level n's.
    Alias(usize),
}

/// One virtual Register name.
#[derive(Clone, Debug)]
struct RegName {
    name: Box<str>,
    /// Index of its shadow slot.
    slot: usize,
    /// Address of a `_.name` Path (materialisation writes through it).
    path: u64,
    /// Written on every path to the instruction being lowered.
    defined: bool,
    /// What was written, when known at compile time (`konst`, `choice`).
    info: Option<VEntry>,
}

/// A Register read as `read_virtual` found it.
enum VirtualRead {
    /// The path's first name lives in a slot: its value.
    Value(VEntry),
    /// The read failed (its error exit is emitted) or the translation bailed out.
    Failed,
    /// The Register is in heap cells: read it through a helper.
    Heap,
}

/// The Register states of every level (saved before, and compared after, inlined branches).
type RegSnapshot = Vec<RegMode>;

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
    levels: Vec<Level<'e>>,
    /// Address of the first shadow slot reserved at entry (virtual Register names).
    slots: Option<ir::Value>,
    /// Shadow slots handed out so far (the count reserved is patched in at the end).
    slot_count: usize,
    slot_count_uses: Vec<ir::Inst>,
    slot_memo: HashMap<(usize, Box<str>), usize>,
    /// The function's shared error exit (level 0, nothing pending), once built.
    shared_exit: Option<ir::Block>,
    /// Largest flush emitted (the flush buffer is sized to it at the end).
    max_flush: usize,
    /// Set when the translation met a shape it does not model.
    bail: Option<Bail>,
    /// Instructions inlined so far (against [`INLINE_BUDGET`]).
    inlined_instrs: usize,
    /// Shared exit blocks by shape (see `emit_exit`), and what fills them at the end.
    exits: HashMap<Vec<u64>, ir::Block>,
    exit_bodies: Vec<(ir::Block, Box<ExitDesc>)>,
    out: Translated,
}

impl<'e> Translator<'_, 'e> {
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

    fn give_up(&mut self, why: &'static str) {
        self.bail.get_or_insert(Bail(why));
    }

    fn lvl(&self) -> &Level<'e> {
        self.levels.last().expect("level 0")
    }

    fn depth(&self) -> usize {
        self.levels.len() - 1
    }

    fn path(&self, k: usize) -> &'e Path {
        &self.lvl().code.paths[k]
    }

    fn path_ptr(&self, k: usize) -> u64 {
        self.path(k) as *const Path as u64
    }

    /// A fresh cache line for a Store-path instruction.
    fn cache_ptr(&mut self) -> u64 {
        let line = Box::new(StoreCache::empty());
        let p = &*line as *const StoreCache as u64;
        self.out.cache_lines.push(line);
        p
    }

    fn position(&self) -> (u32, u32) {
        let l = self.lvl();
        let ins = l.code.instrs[l.pc];
        (ins.line, ins.col)
    }

    fn gen_instr(&mut self, ins: Instr) {
        let k = ins.operand as usize;
        match ins.op {
            Opcode::Const => self.gen_const(k),
            Opcode::LoadStore => self.gen_load_store(k),
            Opcode::LoadReg => self.gen_load_reg(k),
            Opcode::RefStore => self.gen_path_helper(ffi::soma_rt_ref_store as *const () as usize, k),
            Opcode::RefReg => self.gen_ref_reg(k),
            Opcode::SetStore => self.gen_set_store(k),
            Opcode::SetReg => self.gen_set_reg(k),
            Opcode::SetrefStore => self.gen_path_helper(ffi::soma_rt_setref_store as *const () as usize, k),
            Opcode::SetrefReg => self.gen_setref_reg(k),
            Opcode::ExecStore => self.gen_exec_store(k),
            Opcode::ExecReg => self.gen_exec_reg(k),
            Opcode::ExecConst => self.gen_exec_const(k),
        }
    }

    // ----- the virtual stack -----

    /// Push `entries` (bottom first) onto the real AL. A virtual `_.` cannot be pushed (it
    /// has no cell): on a normal path that is an escape and the translation bails.
    fn emit_flush(&mut self, entries: &[VEntry]) {
        if entries.iter().any(|e| e.root.is_some()) {
            self.give_up("a virtual `_.` escapes");
        }
        self.emit_push(entries.iter().map(|e| e.val).collect());
    }

    /// Push `vals` (bottom first) onto the real AL: inline while they fit in its capacity,
    /// else through `jit_push_n` (which grows it). Never collects.
    fn emit_push(&mut self, vals: Vec<ir::Value>) {
        if vals.is_empty() {
            return;
        }
        let flags = MemFlagsData::trusted();
        let len = self.b.ins().load(I64, flags, self.vm, JitLayout::AL_LEN);
        let cap = self.b.ins().load(I64, flags, self.vm, JitLayout::AL_CAP);
        let new_len = self.b.ins().iadd_imm_s(len, vals.len() as i64);
        let fits = self.b.ins().icmp(IntCC::UnsignedLessThanOrEqual, new_len, cap);
        let fast = self.b.create_block();
        let slow = self.b.create_block();
        let done = self.b.create_block();
        self.b.set_cold_block(slow);
        self.b.ins().brif(fits, fast, &[], slow, &[]);

        self.b.switch_to_block(fast);
        let ptr = self.b.ins().load(I64, flags, self.vm, JitLayout::AL_PTR);
        let offset = self.b.ins().ishl_imm_s(len, 3);
        let at = self.b.ins().iadd(ptr, offset);
        for (i, &v) in vals.iter().enumerate() {
            self.b.ins().store(flags, v, at, (i * 8) as i32);
        }
        self.b.ins().store(flags, new_len, self.vm, JitLayout::AL_LEN);
        self.b.ins().jump(done, &[]);

        self.b.switch_to_block(slow);
        self.max_flush = self.max_flush.max(vals.len());
        for (i, &v) in vals.iter().enumerate() {
            self.b.ins().stack_store(I64, v, self.flush_slot, (i * 8) as i32);
        }
        let base = self.b.ins().stack_addr(I64, self.flush_slot, 0);
        let n = self.iconst(vals.len() as u64);
        // The status is ignored: pushing cannot fail (a panic would be an allocation abort).
        self.call_status(helpers::jit_push_n as *const () as usize, &[self.vm, base, n]);
        self.b.ins().jump(done, &[]);
        self.b.switch_to_block(done);
    }

    /// Pop the top `n` values of the real AL into SSA values (bottom first), inline. When the
    /// AL holds fewer, `underflow` is emitted instead (it must end the block: an error exit).
    /// The values are then held only virtually, which is safe for the same reason as any
    /// virtual value: nothing collects before they are consumed or flushed.
    fn emit_take(&mut self, n: usize, underflow: impl FnOnce(&mut Self)) -> Vec<ir::Value> {
        let flags = MemFlagsData::trusted();
        let len = self.b.ins().load(I64, flags, self.vm, JitLayout::AL_LEN);
        let enough = self.b.ins().icmp_imm_s(IntCC::UnsignedGreaterThanOrEqual, len, n as i64);
        let take = self.b.create_block();
        let short = self.b.create_block();
        self.b.set_cold_block(short);
        self.b.ins().brif(enough, take, &[], short, &[]);
        self.b.switch_to_block(short);
        underflow(self);
        self.b.switch_to_block(take);
        let new_len = self.b.ins().iadd_imm_s(len, -(n as i64));
        self.b.ins().store(flags, new_len, self.vm, JitLayout::AL_LEN);
        let ptr = self.b.ins().load(I64, flags, self.vm, JitLayout::AL_PTR);
        let offset = self.b.ins().ishl_imm_s(new_len, 3);
        let at = self.b.ins().iadd(ptr, offset);
        (0..n)
            .map(|i| self.b.ins().load(I64, flags, at, (i * 8) as i32))
            .collect()
    }

    /// Make the top `n` entries of the (virtual + real) AL virtual, taking what is missing
    /// from the real AL. Underflow runs the builtin's AL-form helper, which reports it with the
    /// builtin's own message.
    fn ensure_virtual(&mut self, n: usize, al_form: usize) {
        let missing = n.saturating_sub(self.vs.len());
        if missing == 0 {
            return;
        }
        let vals = self.emit_take(missing, |t| {
            // The AL holds fewer than `n` values in all: the helper fails on underflow.
            t.flush_copy();
            let st = t.call_status(al_form, &[t.vm]);
            t.emit_error_return(st, &[]);
        });
        self.vs.insert_bottom(vals.into_iter().map(|v| VEntry::new(v, None)).collect());
    }

    /// Flush the virtual stack on a path that leaves (the translation state keeps it).
    fn flush_copy(&mut self) {
        let entries = self.pending();
        self.emit_flush(&entries);
    }

    /// Flush the whole virtual stack (before a helper that observes the AL or collects).
    fn flush(&mut self) {
        let entries = self.vs.take_all();
        self.emit_flush(&entries);
    }

    fn vpush(&mut self, val: ir::Value, konst: Option<u64>) {
        self.vpush_entry(VEntry::new(val, konst));
    }

    fn vpush_entry(&mut self, e: VEntry) {
        if self.vs.len() >= MAX_VIRTUAL {
            self.flush();
        }
        self.vs.push(e);
    }

    // ----- errors -----

    /// After a helper returned `status`: when it is not OK, flush `pending` (what the executor
    /// would still hold on the AL), position the error at this instruction and return the
    /// status. Continues in a fresh block on success.
    fn check(&mut self, status: ir::Value, pending: &[VEntry]) {
        if pending.is_empty() && self.depth() == 0 {
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
        self.emit_error_return(status, pending);
        self.b.switch_to_block(cont);
    }

    /// The virtual stack as the executor would hold it (for error paths).
    fn pending(&self) -> Vec<VEntry> {
        self.vs.entries().to_vec()
    }

    /// The function's shared error exit `(status, line, col)` for level 0 with nothing
    /// pending: position the pending error, release the Register slots, return the status.
    /// Created on first use, filled by `finish_error_exit`.
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
        let module = self.b.ins().iconst(I32, self.levels[0].module as i64);
        self.call(helpers::jit_error_at as *const () as usize, &[self.vm, p[1], p[2], module], None);
        self.emit_return(p[0]);
    }

    /// Error path of the current instruction: `pending` is what the executor would still
    /// hold on the AL. Positions the error here (in this level's module), unwinds the frames
    /// of inlined levels and returns `status` (see [`helpers::jit_exit`]).
    fn emit_error_return(&mut self, status: ir::Value, pending: &[VEntry]) {
        let (block, args) = self.error_target(status, pending);
        self.b.ins().jump(block, &args);
    }

    /// Where [`Self::emit_error_return`] jumps, and with what.
    fn error_target(&mut self, status: ir::Value, pending: &[VEntry]) -> (ir::Block, Vec<BlockArg>) {
        let (line, col) = self.position();
        let module = self.lvl().module;
        let site = ((line as u64) << 32) | col as u64;
        self.exit_target(status, pending, ExitKind::Error { module }, site)
    }

    /// Leave through `jit_exit`. Exits with the same shape (the levels and their Register
    /// states, the pending entries, the kind) share one block at the end of the function,
    /// which gets the status, the site (`line << 32 | col` of an error, the resume pc of a
    /// deopt) and the pending values as arguments.
    fn emit_exit(&mut self, status: ir::Value, pending: &[VEntry], kind: ExitKind, site: u64) {
        let (block, args) = self.exit_target(status, pending, kind, site);
        self.b.ins().jump(block, &args);
    }

    /// The shared exit block for an exit of this shape, and the arguments to jump there with.
    fn exit_target(
        &mut self,
        status: ir::Value,
        pending: &[VEntry],
        kind: ExitKind,
        site: u64,
    ) -> (ir::Block, Vec<BlockArg>) {
        let mut key: Vec<u64> = vec![matches!(kind, ExitKind::Deopt) as u64];
        if let ExitKind::Error { module } = kind {
            key.push(module as u64);
        }
        let mut levels = Vec::with_capacity(self.levels.len());
        for (i, l) in self.levels.iter().enumerate() {
            let reg = match &l.reg {
                RegMode::Heap => ExitReg::Heap,
                RegMode::Alias(n) => ExitReg::Alias(*n),
                RegMode::Virtual(names) => ExitReg::Virtual(
                    names
                        .iter()
                        .filter(|n| n.defined)
                        .map(|n| (n.slot, n.path as *const Path))
                        .collect(),
                ),
            };
            // Resume after the instruction that ran the next level (the innermost level's pc
            // comes with the site).
            let resume_pc = self.levels.get(i + 1).map_or(0, |next| next.call_pc + 1);
            key.extend([l.block.to_bits(), l.virtual_frame as u64, resume_pc as u64]);
            match &reg {
                ExitReg::Heap => key.push(0),
                ExitReg::Alias(n) => key.extend([1, *n as u64]),
                ExitReg::Virtual(names) => {
                    key.push(2);
                    key.extend(names.iter().flat_map(|&(slot, path)| [slot as u64, path as u64]));
                    key.push(u64::MAX);
                }
            }
            levels.push(ExitLevel {
                block: l.block,
                virtual_frame: l.virtual_frame,
                reg,
                resume_pc,
            });
        }
        key.extend(pending.iter().map(|e| e.root.map_or(u64::MAX, |n| n as u64)));
        let values: Vec<ir::Value> = pending.iter().filter(|e| e.root.is_none()).map(|e| e.val).collect();
        let block = match self.exits.get(&key) {
            Some(&b) => b,
            None => {
                let b = self.b.create_block();
                self.b.set_cold_block(b);
                self.b.append_block_param(b, I32);
                self.b.append_block_param(b, I64);
                for _ in &values {
                    self.b.append_block_param(b, I64);
                }
                let desc = Box::new(ExitDesc {
                    levels,
                    pending: pending.iter().map(|e| e.root).collect(),
                    kind,
                    slot_count: 0,
                });
                self.exits.insert(key, b);
                self.exit_bodies.push((b, desc));
                b
            }
        };
        let site = self.iconst(site);
        let mut args = vec![BlockArg::Value(status), BlockArg::Value(site)];
        args.extend(values.iter().map(|&v| BlockArg::Value(v)));
        (block, args)
    }

    /// Fill the shared exit blocks (after the body).
    fn finish_exits(&mut self) {
        for (block, desc) in std::mem::take(&mut self.exit_bodies) {
            self.b.switch_to_block(block);
            let params = self.b.block_params(block).to_vec();
            let values = &params[2..];
            self.max_flush = self.max_flush.max(desc.pending.len());
            let mut next = values.iter();
            for (i, root) in desc.pending.iter().enumerate() {
                if root.is_none() {
                    let v = *next.next().expect("a value per non-root entry");
                    self.b.ins().stack_store(I64, v, self.flush_slot, (i * 8) as i32);
                }
            }
            let d = self.iconst(&*desc as *const ExitDesc as u64);
            self.out.exits.push(desc);
            let buf = self.b.ins().stack_addr(I64, self.flush_slot, 0);
            let slots = match self.slots {
                Some(s) => s,
                None => self.iconst(0),
            };
            let st = self.call_status(
                helpers::jit_exit as *const () as usize,
                &[self.vm, params[0], d, buf, slots, params[1]],
            );
            self.emit_time_end();
            self.b.ins().return_(&[st]);
        }
    }

    fn emit_leave_inlined(&mut self, n: usize) {
        if n > 0 {
            let n = self.iconst(n as u64);
            self.call_status(helpers::jit_leave_blocks as *const () as usize, &[self.vm, n]);
        }
    }

    /// Return `status`, releasing the shadow slots first.
    fn emit_return(&mut self, status: ir::Value) {
        self.emit_release_slots();
        self.emit_time_end();
        self.b.ins().return_(&[status]);
    }

    /// `Vm::shadow_release` inline (slots are released in LIFO order).
    fn emit_release_slots(&mut self) {
        if self.slots.is_some() {
            let flags = MemFlagsData::trusted();
            let n = self.slot_count_const();
            let top = self.b.ins().load(I64, flags, self.vm, JitLayout::SHADOW_TOP);
            let top = self.b.ins().isub(top, n);
            self.b.ins().store(flags, top, self.vm, JitLayout::SHADOW_TOP);
        }
    }

    /// The number of shadow slots reserved (an `iconst` patched once the count is known).
    fn slot_count_const(&mut self) -> ir::Value {
        let v = self.iconst(0);
        let inst = self.b.func.dfg.value_def(v).unwrap_inst();
        self.slot_count_uses.push(inst);
        v
    }

    fn emit_time_end(&mut self) {
        if let Some(clock) = self.env.clock {
            let c = self.iconst(clock as u64);
            self.call(helpers::jit_time_end as *const () as usize, &[c], None);
        }
    }

    /// Deoptimisation exit at the current instruction: the executor takes over every level,
    /// innermost first, with the virtual stack as its AL (see [`helpers::jit_exit`]).
    fn emit_deopt(&mut self) {
        let entries = self.pending();
        let ok = self.b.ins().iconst(I32, ffi::SOMA_OK as i64);
        let site = self.lvl().pc as u64;
        self.emit_exit(ok, &entries, ExitKind::Deopt, site);
    }

    fn emit_resume(&mut self, points: Box<[ResumePoint]>) -> ir::Value {
        let n = self.iconst(points.len() as u64);
        let p = self.iconst(points.as_ptr() as u64);
        self.out.resume_points.push(points);
        self.call_status(helpers::jit_resume as *const () as usize, &[self.vm, p, n])
    }

    // ----- virtual Registers -----

    /// Whether the prologue reserves shadow slots: level 0 has virtual names, or some site
    /// executes a Block that may be inlined (which may have some).
    fn needs_slots(&self) -> bool {
        let l = &self.levels[0];
        if matches!(l.reg, RegMode::Virtual(_)) && has_register_instrs(l.code) {
            return true;
        }
        l.code.instrs.iter().any(|ins| match ins.op {
            Opcode::ExecConst => self.inlinable(l.consts[ins.operand as usize].to_bits()),
            Opcode::ExecStore => self
                .store_value_at_compile_time(&l.code.paths[ins.operand as usize])
                .is_some_and(|v| self.inlinable(v.to_bits())),
            _ => false,
        })
    }

    /// Reserve the shadow slots (the count is patched in at the end; exhaustion is the
    /// recursion error).
    /// `Vm::shadow_reserve` inline: bump the top, fill the slots with Void (the collector
    /// marks every slot in use).
    fn reserve_slots(&mut self) {
        let flags = MemFlagsData::trusted();
        let n = self.slot_count_const();
        let top = self.b.ins().load(I64, flags, self.vm, JitLayout::SHADOW_TOP);
        let new_top = self.b.ins().iadd(top, n);
        let full = self
            .b
            .ins()
            .icmp_imm_s(IntCC::UnsignedGreaterThan, new_top, SHADOW_STACK_SLOTS as i64);
        // Shadow stack exhausted (deep recursion of blocks with many names): the executor
        // would still run this block with heap Registers, so interpret the whole Code (a
        // deopt exit at instruction 0; no slots are held, none released).
        let fail = self.b.create_block();
        let cont = self.b.create_block();
        self.b.set_cold_block(fail);
        self.b.ins().brif(full, fail, &[], cont, &[]);
        self.b.switch_to_block(fail);
        let st = self.emit_resume(Box::new([ResumePoint {
            block: self.env.block.to_bits(),
            pc: 0,
        }]));
        self.emit_time_end();
        self.b.ins().return_(&[st]);

        self.b.switch_to_block(cont);
        self.b.ins().store(flags, new_top, self.vm, JitLayout::SHADOW_TOP);
        let base = self.b.ins().load(I64, flags, self.vm, JitLayout::SHADOW_BASE);
        let offset = self.b.ins().ishl_imm_s(top, 3);
        let first = self.b.ins().iadd(base, offset);
        let bytes = self.b.ins().ishl_imm_s(n, 3);
        let end = self.b.ins().iadd(first, bytes);
        let void = self.iconst(Value::VOID.to_bits());
        let head = self.b.create_block();
        let p = self.b.append_block_param(head, I64);
        let fill = self.b.create_block();
        let done = self.b.create_block();
        self.b.ins().jump(head, &[BlockArg::Value(first)]);
        self.b.switch_to_block(head);
        let more = self.b.ins().icmp(IntCC::UnsignedLessThan, p, end);
        self.b.ins().brif(more, fill, &[], done, &[]);
        self.b.switch_to_block(fill);
        self.b.ins().store(flags, void, p, 0);
        let next = self.b.ins().iadd_imm_s(p, 8);
        self.b.ins().jump(head, &[BlockArg::Value(next)]);
        self.b.switch_to_block(done);
        self.slots = Some(first);
    }

    /// The level whose names the current level's Register instructions use (itself, or the
    /// level it aliases), when those names are virtual.
    fn virtual_level(&self) -> Option<usize> {
        let mut i = self.depth();
        loop {
            match &self.levels[i].reg {
                RegMode::Virtual(_) => return Some(i),
                RegMode::Alias(j) => i = *j,
                RegMode::Heap => return None,
            }
        }
    }

    fn names(&mut self, level: usize) -> &mut Vec<RegName> {
        match &mut self.levels[level].reg {
            RegMode::Virtual(names) => names,
            _ => unreachable!("level {level} is virtual"),
        }
    }

    /// The virtual name `name` of `level` (given a slot on first use; `None` when slots were
    /// not reserved, which bails).
    fn reg_name(&mut self, level: usize, k: usize) -> Option<usize> {
        let path = self.path(k);
        let name = &*path.components[0];
        if let Some(i) = self.names(level).iter().position(|n| &*n.name == name) {
            return Some(i);
        }
        if self.slots.is_none() {
            self.give_up("no shadow slots reserved");
            return None;
        }
        // One slot per (level, name): both inlined branches of a `choose` give a name the
        // same slot, and Blocks inlined one after another at a level reuse them.
        let next = self.slot_count;
        let slot = *self.slot_memo.entry((level, name.into())).or_insert(next);
        if slot == next {
            self.slot_count += 1;
        }
        let path_ptr = path as *const Path as u64;
        let names = self.names(level);
        names.push(RegName {
            name: name.into(),
            slot,
            path: path_ptr,
            defined: false,
            info: None,
        });
        Some(names.len() - 1)
    }

    fn slot_offset(slot: usize) -> i32 {
        (slot * 8) as i32
    }

    fn is_cell_ref(&mut self, v: ir::Value) -> ir::Value {
        let h = self.high16(v);
        self.b.ins().icmp_imm_s(IntCC::Equal, h, (Tag::CellRef.high_bits() >> 48) as i64)
    }

    /// LOAD_REG: a virtual name's slot, or the value-form helper (no AL traffic, never
    /// collects).
    fn gen_load_reg(&mut self, k: usize) {
        match self.read_virtual(k) {
            VirtualRead::Value(e) => return self.vpush_entry(e),
            VirtualRead::Failed => return,
            VirtualRead::Heap => {}
        }
        let path = self.iconst(self.path_ptr(k));
        let out = self.out_addr();
        let st = self.call_status(helpers::jit_read_reg as *const () as usize, &[self.vm, path, out]);
        let pending = self.pending();
        self.check(st, &pending);
        let v = self.load_out();
        self.vpush(v, None);
    }

    /// Register path `k` read from a virtual Register: the value, or the error emitted (a
    /// name never written in this execution, which the Register does not have).
    fn read_virtual(&mut self, k: usize) -> VirtualRead {
        let Some(level) = self.virtual_level() else { return VirtualRead::Heap };
        let Some(i) = self.reg_name(level, k) else { return VirtualRead::Failed };
        let n = self.names(level)[i].clone();
        if !n.defined {
            self.emit_undefined_reg(k);
            return VirtualRead::Failed;
        }
        VirtualRead::Value(self.read_name(&n, k))
    }

    /// The value of Register path `k` whose first name is the (defined) virtual name `n`: its
    /// slot, with what is known of it, or for a longer path the value below the cell it
    /// refers to (`jit_read_below`: never collects, errors as the executor's walk).
    fn read_name(&mut self, n: &RegName, k: usize) -> VEntry {
        let base = self.slots.expect("reserved");
        let v = self.b.ins().load(I64, MemFlagsData::trusted(), base, Self::slot_offset(n.slot));
        if self.path(k).components.len() > 1 {
            let path = self.iconst(self.path_ptr(k));
            let out = self.out_addr();
            let st = self.call_status(helpers::jit_read_below as *const () as usize, &[self.vm, v, path, out]);
            let pending = self.pending();
            self.check(st, &pending);
            return VEntry::new(self.load_out(), None);
        }
        let mut e = VEntry::new(v, None);
        if let Some(info) = n.info {
            e.konst = info.konst;
            e.choice = info.choice;
        }
        e
    }

    /// SET_REG: into a virtual name's slot, or through the helper.
    fn gen_set_reg(&mut self, k: usize) {
        let Some(level) = self.virtual_level() else {
            return self.gen_path_helper(ffi::soma_rt_set_reg as *const () as usize, k);
        };
        let Some(i) = self.reg_name(level, k) else { return };
        // The value: the virtual top (peeked: a deopt must still find it on the AL), else
        // popped from the real AL (underflow error as the executor).
        let (entry, peeked) = match self.vs.entries().last() {
            Some(e) => (*e, true),
            None => {
                let v = self.emit_take(1, |t| {
                    // Empty AL: the helper reports the store's underflow.
                    let path = t.iconst(t.path_ptr(k));
                    let out = t.out_addr();
                    let st = t.call_status(helpers::jit_pop_for_store as *const () as usize, &[t.vm, path, out]);
                    t.emit_error_return(st, &[]);
                });
                (VEntry::new(v[0], None), false)
            }
        };
        if entry.root.is_some() {
            return self.give_up("a virtual `_.` stored in a Register");
        }
        let v = entry.val;
        let n = self.names(level)[i].clone();
        let base = self.slots.expect("reserved");
        let flags = MemFlagsData::trusted();
        if n.defined {
            // Write-through case: old value a CellRef, new value not one.
            let old = self.b.ins().load(I64, flags, base, Self::slot_offset(n.slot));
            let old_ref = self.is_cell_ref(old);
            let new_ref = self.is_cell_ref(v);
            let through = self.b.ins().band_not(old_ref, new_ref);
            let deopt = self.b.create_block();
            let cont = self.b.create_block();
            self.b.set_cold_block(deopt);
            self.b.ins().brif(through, deopt, &[], cont, &[]);
            self.b.switch_to_block(deopt);
            if !peeked {
                self.vs.push(entry);
            }
            self.emit_deopt();
            if !peeked {
                self.vs.pop();
            }
            self.b.switch_to_block(cont);
        }
        self.b.ins().store(flags, v, base, Self::slot_offset(n.slot));
        if peeked {
            self.vs.pop();
        }
        let known = (entry.konst.is_some() || entry.choice.is_some()).then_some(entry);
        let name = &mut self.names(level)[i];
        name.defined = true;
        name.info = known;
    }

    /// REF_REG: `_.` of a virtual Register is a virtual entry (no cell yet); anything else
    /// goes through the helper.
    fn gen_ref_reg(&mut self, k: usize) {
        match self.virtual_level() {
            Some(level) if self.path(k).components.is_empty() => {
                let v = self.iconst(Value::VOID.to_bits());
                let mut e = VEntry::new(v, None);
                e.root = Some(level);
                self.vpush_entry(e);
            }
            _ => self.gen_path_helper(ffi::soma_rt_ref_reg as *const () as usize, k),
        }
    }

    /// SETREF_REG. `!_.` of a virtual `_.` of an outer level makes this level an alias of it
    /// (nothing is emitted); `!_.` of anything else replaces the root in the real frame, so
    /// the level's Register is a heap one from here on (the virtual names it had are
    /// dropped by that very write).
    fn gen_setref_reg(&mut self, k: usize) {
        let here = self.depth();
        let top = self.vs.entries().last().copied();
        if self.path(k).components.is_empty() {
            if matches!(self.levels[here].reg, RegMode::Alias(_)) {
                // A second `!_.` writes through the alias into the target's root.
                return self.give_up("`!_.` on an aliased Register");
            }
            if self.vs.entries().iter().any(|e| e.root == Some(here)) {
                return self.give_up("`!_.` while this level's `_.` is virtual");
            }
            if let Some(target) = top.and_then(|e| e.root) {
                // (A `_.` of a level that has ended cannot be aliased: `target >= here`.)
                let both_virtual = || {
                    matches!(self.levels[target].reg, RegMode::Virtual(_))
                        && matches!(self.levels[here].reg, RegMode::Virtual(_))
                };
                if target >= here || !both_virtual() {
                    return self.give_up("`!_.` of an unsupported root");
                }
                self.vs.pop();
                self.levels[here].reg = RegMode::Alias(target);
                return;
            }
            if self.levels[here].virtual_frame {
                return self.give_up("a heap Register needs a real frame");
            }
            self.levels[here].reg = RegMode::Heap;
        }
        self.gen_path_helper(ffi::soma_rt_setref_reg as *const () as usize, k);
    }

    /// EXEC_REG: a virtual name's value is executed as a known value (maybe inlined); else
    /// the helper.
    fn gen_exec_reg(&mut self, k: usize) {
        match self.read_virtual(k) {
            VirtualRead::Value(e) => return self.exec_entry(e),
            VirtualRead::Failed => return,
            VirtualRead::Heap => {}
        }
        self.gen_path_helper(ffi::soma_rt_exec_reg as *const () as usize, k);
    }

    /// `Undefined Register path` for a virtual name never written (the real frame at the
    /// top may belong to another level, so it is not asked).
    fn emit_undefined_reg(&mut self, k: usize) {
        let path = self.iconst(self.path_ptr(k));
        let st = self.call_status(helpers::jit_undefined_reg as *const () as usize, &[self.vm, path]);
        let pending = self.pending();
        self.emit_error_return(st, &pending);
        // Unreachable continuation, for the instructions lowered after this one.
        let dead = self.b.create_block();
        self.b.switch_to_block(dead);
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

    // ----- executing values, inlining -----

    /// The value at a Store path now, if any.
    fn store_value_at_compile_time(&self, path: &Path) -> Option<Value> {
        let comps: Vec<&str> = path.components.iter().map(|s| &**s).collect();
        self.env.vm.read_store_path(&comps)
    }

    /// Whether the Block with these bits (if it is one) is inlined where it is executed.
    fn inlinable(&self, bits: u64) -> bool {
        self.inline_frame(bits).is_some()
    }

    /// How the Block with these bits would be inlined here: `Some(true)` with a virtual
    /// frame, `Some(false)` with a real one, `None` not at all (too big, too deep, recursive,
    /// the program, or needing a real frame under a virtual one).
    fn inline_frame(&self, bits: u64) -> Option<bool> {
        if !self.env.inline || self.depth() >= MAX_INLINE_DEPTH {
            return None;
        }
        // SAFETY: compile-time bits are live values of this VM (constants, Store values).
        let v = unsafe { Value::from_bits(bits) };
        let b = self.env.vm.block_obj(v)?;
        let m = self.env.vm.module(b.module)?;
        let code = &m.module.codes[b.code as usize];
        if b.code == 0
            || self.inlined_instrs + code.instrs.len() > INLINE_BUDGET
            || self.levels.iter().any(|l| l.block == v)
        {
            return None;
        }
        let optional = self.frame_is_optional(code);
        if !optional && self.lvl().virtual_frame {
            return None;
        }
        Some(optional)
    }

    /// Whether an inlined Code can run without a real frame: nothing in it can observe the
    /// frame stack. Its Register must be able to stay virtual, and every site it executes
    /// must be known at compile time to be a Block (which pushes its own frame on top) or a
    /// specialised builtin other than `chain`. An executed Register name is decided during
    /// translation: an unknown value is called with the virtual frames made real around it.
    fn frame_is_optional(&self, code: &Code) -> bool {
        reg_eligible(code)
            && code.instrs.iter().all(|ins| {
                if ins.op != Opcode::ExecStore {
                    return true;
                }
                match self.store_value_at_compile_time(&code.paths[ins.operand as usize]) {
                    Some(v) if v.as_block_obj().is_some() => true,
                    Some(v) => v.as_builtin_obj().is_some_and(|p| {
                        // SAFETY: builtin objects are VM roots for the VM's whole life.
                        let id = unsafe { (*p.as_ptr()).id };
                        is_specialised(id) && id != BuiltinId::Chain
                    }),
                    None => false,
                }
            })
    }

    /// Blocks of the levels whose frames are virtual, outermost first.
    fn virtual_frames(&self) -> Vec<u64> {
        self.levels
            .iter()
            .filter(|l| l.virtual_frame)
            .map(|l| l.block.to_bits())
            .collect()
    }

    /// Push real frames for the levels whose frames are virtual (a slow path about to need
    /// them); returns how many.
    fn emit_realize_frames(&mut self) -> usize {
        let blocks = self.virtual_frames();
        if blocks.is_empty() {
            return 0;
        }
        let n = blocks.len();
        let list: Box<[u64]> = blocks.into_boxed_slice();
        let p = self.iconst(list.as_ptr() as u64);
        self.out.frame_lists.push(list);
        let count = self.iconst(n as u64);
        self.call_status(helpers::jit_frames_enter as *const () as usize, &[self.vm, p, count]);
        n
    }

    /// Call the exec helper on `v` (the AL flushed). Under virtual frames the value may be
    /// anything (`block`, a host builtin): they are made real for the call.
    fn emit_exec_value(&mut self, v: ir::Value) {
        let realized = self.emit_realize_frames();
        let st = self.call_status(helpers::jit_exec as *const () as usize, &[self.vm, v]);
        if realized > 0 {
            let n = self.iconst(realized as u64);
            self.call_status(helpers::jit_frames_leave as *const () as usize, &[self.vm, n]);
        }
        self.check(st, &[]);
    }

    /// Execute a virtual entry: inline the Block when it is known, branch to both inlined
    /// Blocks of a known `choose`, else flush and call the exec helper.
    fn exec_entry(&mut self, e: VEntry) {
        if e.root.is_some() {
            return self.give_up("a virtual `_.` executed");
        }
        if let Some(bits) = e.konst.filter(|&b| self.inlinable(b)) {
            return self.inline_block(bits);
        }
        // SAFETY: compile-time constant bits are live values (module constants).
        if let Some(bits) = e.konst.filter(|&b| unsafe { Value::from_bits(b) }.as_block_obj().is_some()) {
            return self.emit_call_block(bits);
        }
        if let Some((truthy, t, f)) = e.choice.filter(|&(_, t, f)| self.inlinable(t) && self.inlinable(f)) {
            return self.inline_choice(truthy, t, f);
        }
        self.flush();
        self.emit_exec_value(e.val);
    }

    /// Call Block `bits`, known at compile time, directly: the checks and bookkeeping of
    /// `exec::run_native` inline (native stack, depth limit, room in the frame stack, the
    /// poll's turn, `exec_count`, the frame) around a native call of its compiled entry. A
    /// Block not compiled yet, and any check that fails, take `jit_exec`, which does the same
    /// with every detail (tier-up, growing the frame stack, the poll hook, the errors). A
    /// Block pushes its own frame, so no virtual frame of this code needs to be real.
    fn emit_call_block(&mut self, bits: u64) {
        self.flush();
        let flags = MemFlagsData::trusted();
        // SAFETY: compile-time constant bits are live values (module constants).
        let obj = unsafe { Value::from_bits(bits) }.as_block_obj().expect("a Block").as_ptr() as u64;
        let entry_addr = self.iconst(obj + std::mem::offset_of!(BlockObj, native_entry) as u64);
        let entry = self.b.ins().load(I64, flags, entry_addr, 0);
        let compiled = self.b.ins().icmp_imm_s(IntCC::NotEqual, entry, 0);
        let sp = self.b.ins().get_stack_pointer(I64);
        let limit = self.b.ins().load(I64, flags, self.vm, JitLayout::STACK_LIMIT);
        let stack_ok = self.b.ins().icmp(IntCC::UnsignedGreaterThanOrEqual, sp, limit);
        let depth = self.b.ins().load(I64, flags, self.vm, JitLayout::BLOCK_DEPTH);
        let max = self.b.ins().load(I64, flags, self.vm, JitLayout::MAX_DEPTH);
        let depth_ok = self.b.ins().icmp(IntCC::UnsignedLessThan, depth, max);
        let len = self.b.ins().load(I64, flags, self.vm, JitLayout::FRAMES_LEN);
        let cap = self.b.ins().load(I64, flags, self.vm, JitLayout::FRAMES_CAP);
        let room = self.b.ins().icmp(IntCC::UnsignedLessThan, len, cap);
        let countdown = self.b.ins().load(I32, flags, self.vm, JitLayout::POLL_COUNTDOWN);
        let not_polling = self.b.ins().icmp_imm_s(IntCC::NotEqual, countdown, 1);
        let a = self.b.ins().band(compiled, stack_ok);
        let c = self.b.ins().band(depth_ok, room);
        let a = self.b.ins().band(a, c);
        let ok = self.b.ins().band(a, not_polling);
        let fast = self.b.create_block();
        let slow = self.b.create_block();
        let done = self.b.create_block();
        let st = self.b.append_block_param(done, I32);
        self.b.set_cold_block(slow);
        self.b.ins().brif(ok, fast, &[], slow, &[]);

        self.b.switch_to_block(fast);
        let countdown = self.b.ins().iadd_imm_s(countdown, -1);
        self.b.ins().store(flags, countdown, self.vm, JitLayout::POLL_COUNTDOWN);
        self.emit_count_execution(obj);
        let frames = self.b.ins().load(I64, flags, self.vm, JitLayout::FRAMES_PTR);
        let offset = self.b.ins().imul_imm_s(len, JitLayout::FRAME_SIZE as i64);
        let frame = self.b.ins().iadd(frames, offset);
        let null = self.iconst(0);
        let block = self.iconst(bits);
        let no = self.b.ins().iconst(types::I8, 0);
        self.b.ins().store(flags, null, frame, JitLayout::FRAME_REGISTER);
        self.b.ins().store(flags, block, frame, JitLayout::FRAME_BLOCK);
        self.b.ins().store(flags, no, frame, JitLayout::FRAME_ALIAS);
        let pushed = self.b.ins().iadd_imm_s(len, 1);
        self.b.ins().store(flags, pushed, self.vm, JitLayout::FRAMES_LEN);
        let deeper = self.b.ins().iadd_imm_s(depth, 1);
        self.b.ins().store(flags, deeper, self.vm, JitLayout::BLOCK_DEPTH);
        let sig = self.sig(&[I64, I32], Some(I32));
        let not_chained = self.b.ins().iconst(I32, 0);
        let call = self.b.ins().call_indirect(sig, entry, &[self.vm, not_chained]);
        let status = self.b.inst_results(call)[0];
        // Leave the frame: the callee left the frame stack and the depth as it found them.
        self.b.ins().store(flags, len, self.vm, JitLayout::FRAMES_LEN);
        self.b.ins().store(flags, depth, self.vm, JitLayout::BLOCK_DEPTH);
        self.b.ins().jump(done, &[BlockArg::Value(status)]);

        self.b.switch_to_block(slow);
        let v = self.iconst(bits);
        let status = self.call_status(helpers::jit_exec as *const () as usize, &[self.vm, v]);
        self.b.ins().jump(done, &[BlockArg::Value(status)]);

        self.b.switch_to_block(done);
        self.check(st, &[]);
    }

    /// Run the body of Block `bits` here, in a frame entered for it, with the virtual stack
    /// carried through.
    fn inline_block(&mut self, bits: u64) {
        // SAFETY: `inlinable` checked these are the bits of a live Block.
        let v = unsafe { Value::from_bits(bits) };
        let b = self.env.vm.block_obj(v).expect("inlinable Block");
        let m = self.env.vm.module(b.module).expect("loaded module");
        let code = &m.module.codes[b.code as usize];
        let Some(virtual_frame) = self.inline_frame(bits) else {
            // The budget ran out (inside the other branch of a `choose`): a call.
            return self.emit_call_block(bits);
        };
        if virtual_frame {
            self.emit_count_frame();
        } else {
            let block = self.iconst(bits);
            let st = self.call_status(helpers::jit_enter_inlined as *const () as usize, &[self.vm, block]);
            let pending = self.pending();
            self.check(st, &pending);
        }
        let call_pc = self.lvl().pc;
        let reg = if reg_eligible(code) {
            RegMode::Virtual(Vec::new())
        } else {
            RegMode::Heap
        };
        self.levels.push(Level {
            code,
            consts: &m.consts[b.code as usize],
            block: v,
            module: b.module,
            is_program: false,
            pc: 0,
            call_pc,
            reg,
            virtual_frame,
        });
        self.out.inlined += 1;
        self.inlined_instrs += code.instrs.len();
        for (pc, &ins) in code.instrs.iter().enumerate() {
            self.levels.last_mut().expect("level").pc = pc;
            self.gen_instr(ins);
            if self.bail.is_some() {
                // Abandoned: emit nothing more (the current block may be filled).
                self.levels.pop();
                return;
            }
        }
        let here = self.depth();
        if self.vs.entries().iter().any(|e| e.root == Some(here)) {
            self.give_up("a virtual `_.` outlives its Block");
        }
        if self.lvl().virtual_frame {
            self.emit_uncount_frame();
        } else {
            self.emit_leave_inlined(1);
        }
        self.levels.pop();
    }

    /// Enter a virtual frame: the step, depth check and count of `Vm::enter_inlined`, inline
    /// (a limit or recursion error is the executing instruction's, here in the calling level).
    fn emit_count_frame(&mut self) {
        let flags = MemFlagsData::trusted();
        // A step (limits.rs): the poll countdown; at zero, the limits (not the host) are
        // checked by `jit_poll_inlined`.
        self.emit_countdown_poll(helpers::jit_poll_inlined as *const () as usize, |t, st| {
            let pending = t.pending();
            t.emit_error_return(st, &pending);
        });
        let depth = self.b.ins().load(I64, flags, self.vm, JitLayout::BLOCK_DEPTH);
        let max = self.b.ins().load(I64, flags, self.vm, JitLayout::MAX_DEPTH);
        let full = self.b.ins().icmp(IntCC::UnsignedGreaterThanOrEqual, depth, max);
        let fail = self.b.create_block();
        let cont = self.b.create_block();
        self.b.set_cold_block(fail);
        self.b.ins().brif(full, fail, &[], cont, &[]);
        self.b.switch_to_block(fail);
        let st = self.call_status(helpers::jit_recursion_error as *const () as usize, &[self.vm]);
        let pending = self.pending();
        self.emit_error_return(st, &pending);
        self.b.switch_to_block(cont);
        let depth = self.b.ins().iadd_imm_s(depth, 1);
        self.b.ins().store(flags, depth, self.vm, JitLayout::BLOCK_DEPTH);
    }

    fn emit_uncount_frame(&mut self) {
        let flags = MemFlagsData::trusted();
        let depth = self.b.ins().load(I64, flags, self.vm, JitLayout::BLOCK_DEPTH);
        let depth = self.b.ins().iadd_imm_s(depth, -1);
        self.b.ins().store(flags, depth, self.vm, JitLayout::BLOCK_DEPTH);
    }

    /// Execute a `choose` between Blocks `t` and `f` (by `truthy`, an `i8`): both bodies are
    /// inlined on their own branch and the branches meet again with the same virtual stack
    /// depth (or both flushed) and the same Register states (else the translation bails).
    fn inline_choice(&mut self, truthy: ir::Value, t: u64, f: u64) {
        let before_vs = self.vs.clone();
        let before_regs = self.reg_snapshot();
        let tb = self.b.create_block();
        let fb = self.b.create_block();
        self.b.ins().brif(truthy, tb, &[], fb, &[]);

        let mut arms = Vec::with_capacity(2);
        for (entry, bits) in [(tb, t), (fb, f)] {
            self.vs = before_vs.clone();
            self.restore_regs(&before_regs);
            self.b.switch_to_block(entry);
            self.inline_block(bits);
            if self.bail.is_some() {
                return;
            }
            // A pristine exit block per arm: what it does (jump with values, or flush first)
            // is decided once both arms are known.
            let exit = self.b.create_block();
            self.b.ins().jump(exit, &[]);
            arms.push((exit, self.vs.clone(), self.reg_snapshot()));
        }
        let [(t_exit, t_vs, t_regs), (f_exit, f_vs, f_regs)]: [_; 2] = arms.try_into().expect("two arms");
        let Some(regs) = merge_regs(&t_regs, &f_regs) else {
            return self.give_up("inlined branches leave the Registers differently");
        };
        let merge = self.b.create_block();
        let same_shape = t_vs.len() == f_vs.len();
        let vars: Vec<_> = if same_shape {
            (0..t_vs.len()).map(|_| self.b.declare_var(I64)).collect()
        } else {
            Vec::new()
        };
        for (exit, vs) in [(t_exit, &t_vs), (f_exit, &f_vs)] {
            self.b.switch_to_block(exit);
            if same_shape {
                for (var, e) in vars.iter().zip(vs.entries()) {
                    self.b.def_var(*var, e.val);
                }
            } else {
                self.emit_flush(vs.entries());
            }
            self.b.ins().jump(merge, &[]);
        }
        self.b.switch_to_block(merge);
        self.vs = VStack::default();
        if same_shape {
            for (i, var) in vars.iter().enumerate() {
                let (a, b) = (t_vs.entries()[i], f_vs.entries()[i]);
                if a.root.is_some() || b.root.is_some() {
                    return self.give_up("a virtual `_.` across inlined branches");
                }
                let val = self.b.use_var(*var);
                let konst = if a.konst == b.konst { a.konst } else { None };
                self.vs.push(VEntry::new(val, konst));
            }
        }
        self.restore_regs(&regs);
    }

    fn reg_snapshot(&self) -> RegSnapshot {
        self.levels.iter().map(|l| l.reg.clone()).collect()
    }

    fn restore_regs(&mut self, snap: &RegSnapshot) {
        for (l, r) in self.levels.iter_mut().zip(snap) {
            l.reg = r.clone();
        }
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

    /// The epoch guard of a cache line: branch to the cold `miss` block unless the line was
    /// filled under the current epoch; on a hit (the block now current) return its cell.
    fn emit_cache_hit(&mut self, cache: ir::Value, miss: ir::Block) -> ir::Value {
        let flags = MemFlagsData::trusted();
        let epoch_addr = self.iconst(self.env.epoch_ptr as u64);
        let epoch = self.b.ins().load(I64, flags, epoch_addr, 0);
        let cached = self.b.ins().load(I64, flags, cache, CACHE_EPOCH_OFFSET);
        let hit = self.b.ins().icmp(IntCC::Equal, epoch, cached);
        let hit_b = self.b.create_block();
        self.b.set_cold_block(miss);
        self.b.ins().brif(hit, hit_b, &[], miss, &[]);
        self.b.switch_to_block(hit_b);
        self.b.ins().load(I64, flags, cache, CACHE_CELL_OFFSET)
    }

    /// The poll countdown of a block entry done inline: decrement it, and at zero call `poll`
    /// (a status helper taking the VM); a non-zero status goes to `on_fail`, which ends its
    /// block. Continues in the block after the poll.
    fn emit_countdown_poll(&mut self, poll: usize, on_fail: impl FnOnce(&mut Self, ir::Value)) {
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
        let st = self.call_status(poll, &[self.vm]);
        let fail = self.b.create_block();
        self.b.set_cold_block(fail);
        self.b.ins().brif(st, fail, &[], cont, &[]);
        self.b.switch_to_block(fail);
        on_fail(self, st);
        self.b.switch_to_block(cont);
    }

    /// This Block's execution count, loaded (at entry: whoever entered it counted it).
    fn load_own_exec_count(&mut self) -> ir::Value {
        let obj = self.env.block.as_block_obj().expect("a compiled Block").as_ptr() as u64;
        let count_addr = self.iconst(obj + std::mem::offset_of!(BlockObj, exec_count) as u64);
        self.b.ins().load(I64, MemFlagsData::trusted(), count_addr, 0)
    }

    /// When this Block's execution `count` is `n`, ask for the optimized compile: a cold call
    /// of `jit_note_hot`, which neither collects nor touches the AL (it translates and
    /// queues, or compiles and installs), so nothing is flushed.
    fn emit_hot_check(&mut self, count: ir::Value, n: u64) {
        let hot = self.b.ins().icmp_imm_s(IntCC::Equal, count, n as i64);
        let ask = self.b.create_block();
        let cont = self.b.create_block();
        self.b.set_cold_block(ask);
        self.b.ins().brif(hot, ask, &[], cont, &[]);
        self.b.switch_to_block(ask);
        let block = self.iconst(self.env.block.to_bits());
        self.call(helpers::jit_note_hot as *const () as usize, &[self.vm, block], None);
        self.b.ins().jump(cont, &[]);
        self.b.switch_to_block(cont);
    }

    /// `exec_count += 1` on the Block object at `obj` (an execution the executor would count);
    /// returns the new count.
    fn emit_count_execution(&mut self, obj: u64) -> ir::Value {
        let flags = MemFlagsData::trusted();
        let count_addr = self.iconst(obj + std::mem::offset_of!(BlockObj, exec_count) as u64);
        let count = self.b.ins().load(I64, flags, count_addr, 0);
        let count = self.b.ins().iadd_imm_s(count, 1);
        self.b.ins().store(flags, count, count_addr, 0);
        count
    }

    /// The value of Store path `k` through this instruction's cache line. When the path was
    /// never created, the `Undefined Store path` error exit.
    fn cached_store_value(&mut self, k: usize) -> ir::Value {
        if self.lvl().is_program {
            // The program runs once: a helper read is smaller and compiles faster.
            let path = self.iconst(self.path_ptr(k));
            let out = self.out_addr();
            let st = self.call_status(helpers::jit_read_store as *const () as usize, &[self.vm, path, out]);
            let pending = self.pending();
            self.check(st, &pending);
            return self.load_out();
        }
        let flags = MemFlagsData::trusted();
        let line = self.cache_ptr();
        let cache = self.iconst(line);
        let miss_b = self.b.create_block();
        let have = self.b.create_block();
        let cell = self.b.append_block_param(have, I64);
        let c = self.emit_cache_hit(cache, miss_b);
        self.b.ins().jump(have, &[BlockArg::Value(c)]);

        self.b.switch_to_block(miss_b);
        let path = self.iconst(self.path_ptr(k));
        let c = self
            .call(helpers::jit_resolve_store as *const () as usize, &[self.vm, path, cache], Some(I64))
            .expect("cell");
        // Null: never created; the helper recorded `Undefined Store path` (the virtual stack
        // is what the executor holds).
        let st = self.b.ins().iconst(I32, ffi::SOMA_ERROR as i64);
        let pending = self.pending();
        let (undefined, args) = self.error_target(st, &pending);
        self.b.ins().brif(c, have, &[BlockArg::Value(c)], undefined, &args);

        self.b.switch_to_block(have);
        self.b.ins().load(I64, flags, cell, CELL_VALUE_OFFSET as i32)
    }

    /// End of the Code. The virtual stack goes to the AL and the function returns OK, except
    /// in a chained run (a `chain` loop is running this Code) whose result on top is this
    /// very Block: the loop would pop it and run it again, so the code runs that next
    /// iteration itself without growing anything (see `heap::NativeEntry`).
    fn finish_body(&mut self) {
        let self_bits = self.env.block.to_bits();
        let top = self.vs.entries().last().copied();
        let may_loop = !self.lvl().is_program
            && top.is_some_and(|e| e.root.is_none() && (e.konst == Some(self_bits) || e.may_be == Some(self_bits)));
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
        // Newer code for this Block installed meanwhile (the optimizing tier): return, and
        // the `chain` loop runs the next round in it.
        let flag_addr = self.iconst(&*self.out.superseded as *const std::cell::Cell<u64> as u64);
        let superseded = self.b.ins().load(I64, MemFlagsData::trusted(), flag_addr, 0);
        let loop_b = self.b.create_block();
        let ret_b = self.b.create_block();
        let check_b = self.b.create_block();
        let moved_b = self.b.create_block();
        self.b.set_cold_block(moved_b);
        self.b.ins().brif(again, check_b, &[], ret_b, &[]);
        self.b.switch_to_block(check_b);
        self.b.ins().brif(superseded, moved_b, &[], loop_b, &[]);
        // Leaving for the newer code: mark the move (2), for the statistics.
        self.b.switch_to_block(moved_b);
        let two = self.b.ins().iconst(I64, 2);
        self.b.ins().store(MemFlagsData::trusted(), two, flag_addr, 0);
        self.b.ins().jump(ret_b, &[]);

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
        // A failed poll fails the block entry: the error is the caller's, positioned at its
        // `chain` (as when `Vm::enter_block` fails), so it is returned unpositioned.
        self.emit_countdown_poll(helpers::jit_poll as *const () as usize, |t, st| t.emit_return(st));

        let obj = self.env.block.as_block_obj().expect("a compiled Block").as_ptr();
        let count = self.emit_count_execution(obj as u64);
        if let Some(n) = self.env.hot_at {
            self.emit_hot_check(count, n);
        }
        // Level 0's Register may be virtual now and heap at the end (after `!_.` of a value):
        // restarting the real frame is right whatever the mode.
        if has_register_instrs(self.levels[0].code) {
            self.call_status(helpers::jit_restart_frame as *const () as usize, &[self.vm]);
        }
    }

    // ----- one gen_* per opcode -----

    /// CONST: a virtual push of the constant's bits (constants are module roots).
    fn gen_const(&mut self, k: usize) {
        let bits = self.lvl().consts[k].to_bits();
        let v = self.iconst(bits);
        self.vpush(v, Some(bits));
    }

    /// LOAD_STORE: inline read through the epoch-guarded cache line.
    fn gen_load_store(&mut self, k: usize) {
        let v = self.cached_store_value(k);
        self.vpush(v, None);
    }

    /// SET_STORE: flush, then the cached-write helper (a safepoint, like the executor's).
    fn gen_set_store(&mut self, k: usize) {
        if let Some(e) = self.vs.pop() {
            if e.root.is_some() {
                return self.give_up("a virtual `_.` stored in the Store");
            }
            return self.gen_set_store_value(k, e.val);
        }
        self.flush();
        let path = self.iconst(self.path_ptr(k));
        let line = self.cache_ptr();
        let cache = self.iconst(line);
        let st = self.call_status(helpers::jit_set_store as *const () as usize, &[self.vm, path, cache]);
        self.check(st, &[]);
    }

    /// SET_STORE of a virtual value: an inline store into the cached cell when neither the old
    /// nor the new value is a CellRef (no write-through, no epoch change), else the
    /// value-form helper. Nothing is flushed: neither path collects.
    fn gen_set_store_value(&mut self, k: usize, v: ir::Value) {
        let line = self.cache_ptr();
        let cache = self.iconst(line);
        if self.lvl().is_program {
            return self.emit_set_store_helper(k, cache, v);
        }
        let flags = MemFlagsData::trusted();
        let slow = self.b.create_block();
        let store_b = self.b.create_block();
        let done = self.b.create_block();
        let cell = self.emit_cache_hit(cache, slow);
        let old = self.b.ins().load(I64, flags, cell, CELL_VALUE_OFFSET as i32);
        let old_ref = self.is_cell_ref(old);
        let new_ref = self.is_cell_ref(v);
        let any_ref = self.b.ins().bor(old_ref, new_ref);
        self.b.ins().brif(any_ref, slow, &[], store_b, &[]);

        self.b.switch_to_block(store_b);
        self.b.ins().store(flags, v, cell, CELL_VALUE_OFFSET as i32);
        self.b.ins().jump(done, &[]);

        self.b.switch_to_block(slow);
        self.emit_set_store_helper(k, cache, v);
        self.b.ins().jump(done, &[]);

        self.b.switch_to_block(done);
    }

    /// `jit_set_store_value` (the write with write-through and epoch rules, refilling the
    /// cache line), error exit with the virtual stack as it stands.
    fn emit_set_store_helper(&mut self, k: usize, cache: ir::Value, v: ir::Value) {
        let path = self.iconst(self.path_ptr(k));
        let st = self.call_status(
            helpers::jit_set_store_value as *const () as usize,
            &[self.vm, path, cache, v],
        );
        let pending = self.pending();
        self.check(st, &pending);
    }

    /// EXEC_CONST: a block literal, inlined when small, else run through the exec helper.
    fn gen_exec_const(&mut self, k: usize) {
        let bits = self.lvl().consts[k].to_bits();
        let v = self.iconst(bits);
        self.exec_entry(VEntry::new(v, Some(bits)));
    }

    /// EXEC_STORE: read through the cache. A site whose path held a specialised builtin or an
    /// inlinable Block at compile time is guarded on the value's identity (deopt exit when
    /// rebound) and lowered inline; anything else is flushed and executed by the helper.
    fn gen_exec_store(&mut self, k: usize) {
        let v = self.cached_store_value(k);
        let seen = self.store_value_at_compile_time(self.path(k));
        let builtin = seen.and_then(|s| {
            let p = s.as_builtin_obj()?;
            // SAFETY: builtin objects are VM roots for the VM's whole life.
            let id: BuiltinId = unsafe { (*p.as_ptr()).id };
            is_specialised(id).then_some(id)
        });
        let block = seen.filter(|s| s.as_block_obj().is_some());
        let Some(bits) = seen.filter(|_| builtin.is_some() || block.is_some()) else {
            self.flush();
            self.emit_exec_value(v);
            return;
        };
        let comps = self.path(k).components.iter().map(|c| c.to_string()).collect();
        self.out.assumptions.push((comps, bits.to_bits()));
        let same = self.b.ins().icmp_imm_s(IntCC::Equal, v, bits.to_bits() as i64);
        let fast = self.b.create_block();
        let deopt = self.b.create_block();
        self.b.set_cold_block(deopt);
        self.b.ins().brif(same, fast, &[], deopt, &[]);
        self.b.switch_to_block(deopt);
        self.emit_deopt();
        self.b.switch_to_block(fast);
        match builtin {
            Some(id) => self.gen_builtin(id),
            None if self.inlinable(bits.to_bits()) => self.inline_block(bits.to_bits()),
            None => self.emit_call_block(bits.to_bits()),
        }
    }

    /// A guarded builtin, lowered inline where its operands are virtual.
    fn gen_builtin(&mut self, id: BuiltinId) {
        match id {
            BuiltinId::Chain => self.gen_chain(),
            BuiltinId::Choose => {
                self.ensure_virtual(3, al_form_helper(id));
                self.gen_choose()
            }
            BuiltinId::Lt => {
                self.ensure_virtual(2, al_form_helper(id));
                self.gen_lt()
            }
            BuiltinId::Block if !self.lvl().is_program => {
                let bits = self.lvl().block.to_bits();
                let v = self.iconst(bits);
                self.vpush(v, Some(bits));
            }
            _ => match arith_op(id) {
                Some(op) => {
                    self.ensure_virtual(2, al_form_helper(id));
                    self.gen_arith(op)
                }
                None => self.gen_al_builtin(al_form_helper(id)),
            },
        }
    }

    /// `choose` on three virtual operands: a select, nothing called.
    fn gen_choose(&mut self) {
        let [c, t, f]: [VEntry; 3] = self.vs.pop_n(3).try_into().expect("3 entries");
        // SAFETY: compile-time constant bits are live values (module constants). A virtual
        // `_.` is a CellRef, which is truthy.
        let known = c.konst.map(|cb| unsafe { Value::from_bits(cb) }.is_truthy()).or(c.root.map(|_| true));
        if let Some(truthy) = known {
            self.vpush_entry(if truthy { t } else { f });
            return;
        }
        if t.root.is_some() || f.root.is_some() {
            return self.give_up("a virtual `_.` chosen at run time");
        }
        // Falsy values are exactly Void, Nil, False: BOX_BASE + 0..=2.
        let d = self.b.ins().iadd_imm_s(c.val, -(BOX_BASE as i64));
        let truthy = self.b.ins().icmp_imm_s(IntCC::UnsignedGreaterThan, d, 2);
        let r = self.b.ins().select(truthy, t.val, f.val);
        let mut e = VEntry::new(r, None);
        match (t.konst, f.konst) {
            (Some(a), Some(b)) if a == b => e.konst = Some(a),
            (Some(a), Some(b)) => e.choice = Some((truthy, a, b)),
            _ => {}
        }
        e.may_be = t.konst.or(t.may_be).or(f.konst).or(f.may_be);
        self.vpush_entry(e);
    }

    /// Small-int `+ - * / %` with overflow checks; other operands (BigInts, wrong types, zero
    /// divisors, overflowing results) go to `soma_rt_int_arith`, which never collects.
    fn gen_arith(&mut self, op: u32) {
        let IntBinop { a, b: bv, x, y, slow, done } = self.begin_int_binop();
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
        let IntBinop { a, b: bv, x, y, slow, done } = self.begin_int_binop();
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
        if a.root.is_some() || b.root.is_some() {
            self.give_up("a virtual `_.` as an operand");
        }
        // A constant operand's tag and integer are known at compile time.
        // SAFETY: compile-time constant bits are live values (module constants).
        let known = |e: &VEntry| e.konst.and_then(|k| unsafe { Value::from_bits(k) }.as_small_int());
        let (ka, kb) = (known(&a), known(&b));
        let (a, b) = (a.val, b.val);
        let done = self.b.create_block();
        self.b.append_block_param(done, I64);
        let fast = self.b.create_block();
        let slow = self.b.create_block();
        self.b.set_cold_block(slow);
        let checks: Vec<ir::Value> = [(a, ka), (b, kb)]
            .into_iter()
            .filter(|(_, k)| k.is_none())
            .map(|(v, _)| self.is_small_int(v))
            .collect();
        match checks[..] {
            [] => {
                self.b.ins().jump(fast, &[]);
            }
            [one] => {
                self.b.ins().brif(one, fast, &[], slow, &[]);
            }
            [p, q] => {
                let both = self.b.ins().band(p, q);
                self.b.ins().brif(both, fast, &[], slow, &[]);
            }
            _ => unreachable!("two operands"),
        }
        self.b.switch_to_block(fast);
        let x = match ka {
            Some(i) => self.iconst(i as u64),
            None => self.unbox_int(a),
        };
        let y = match kb {
            Some(i) => self.iconst(i as u64),
            None => self.unbox_int(b),
        };
        IntBinop { a, b, x, y, slow, done }
    }

    /// End an inline binary Int op in its (current) slow block: call the status helper at
    /// `helper`, which writes the result to the out slot, then continue in `done` with the
    /// result pushed on the virtual stack.
    fn finish_int_binop(&mut self, done: ir::Block, helper: usize, args: &[ir::Value]) {
        let st = self.call_status(helper, args);
        let pending = self.pending();
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
            if top.root.is_some() {
                self.give_up("a virtual `_.` chained");
            }
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

/// The Register states after two inlined branches, when they agree: the same modes, the same
/// names defined (a name only one branch gave a slot must be undefined there), and what is
/// known of a value kept only where both branches know the same.
fn merge_regs(a: &RegSnapshot, b: &RegSnapshot) -> Option<RegSnapshot> {
    a.iter()
        .zip(b)
        .map(|(x, y)| match (x, y) {
            (RegMode::Heap, RegMode::Heap) => Some(RegMode::Heap),
            (RegMode::Alias(i), RegMode::Alias(j)) if i == j => Some(RegMode::Alias(*i)),
            (RegMode::Virtual(xs), RegMode::Virtual(ys)) => {
                let mut names = Vec::with_capacity(xs.len().max(ys.len()));
                for n in xs {
                    match ys.iter().find(|m| m.name == n.name) {
                        Some(m) if m.slot == n.slot && m.defined == n.defined => {
                            let info = if m.info == n.info { n.info } else { None };
                            names.push(RegName { info, ..n.clone() });
                        }
                        None if !n.defined => names.push(n.clone()),
                        _ => return None,
                    }
                }
                for m in ys.iter().filter(|m| !xs.iter().any(|n| n.name == m.name)) {
                    if m.defined {
                        return None;
                    }
                    names.push(m.clone());
                }
                Some(RegMode::Virtual(names))
            }
            _ => None,
        })
        .collect()
}
