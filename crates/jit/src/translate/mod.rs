//! Lowering of one SOMA Code to Cranelift IR: one `gen_*` per opcode over the virtual stack of
//! `vstack.rs`, with small Blocks inlined where the executed value is known.
//!
//! The function built is `extern "C" fn(vm: *mut Vm, chained: u32) -> i32` (a `NativeEntry`):
//! it runs the Code's body in the frame its caller entered and returns `SOMA_OK`, or the
//! status of the first helper that failed, with the error on the VM positioned at the failing
//! instruction.
//!
//! Runtime addresses are embedded in the code, so the IR does not depend on a `Module` and can
//! be compiled for any 64-bit ISA (the aarch64 check compiles the same IR it would run on
//! x86_64). The process's own addresses (helpers) are `iconst`s; what belongs to one VM (its
//! paths, cache lines, counters, heap Values, the memory the translation allocates) is named
//! through a *VM constant* ([`Translator::vm_const`]): an external symbol that the install
//! patches with the value `Translated::vm_consts` holds for it. Two VMs that translate the same
//! Code against equal Stores then build equal functions, and the machine code generated for
//! one serves the other (`code_cache.rs`).
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
    self, ExitDesc, ExitKind, ExitLevel, ExitName, ExitReg, ResumePoint,
};
use crate::clif::iconst_value;
use crate::deopt::{self, DeoptReason};
use crate::helper_table::Helper;
use soma_runtime::int::ArithOp;
use crate::vstack::{ChoiceArm, IntOperand, Rel, VEntry, VStack, VValue, MAX_VIRTUAL};
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
use soma_runtime::store_cache::{StoreCacheLine, LINE_CELL_OFFSET, LINE_EPOCH_OFFSET};
use soma_runtime::value::{Tag, Value, BOX_BASE, PAYLOAD_MASK};
use soma_runtime::sym::Sym;
use soma_runtime::vm::{JitLayout, SHADOW_STACK_SLOTS};
use soma_runtime::Vm;
use rustc_hash::FxHashMap;

/// What [`Translator::emit_call_checks`] read on the way to the call: the frame-stack length,
/// the depth and the poll countdown.
#[derive(Clone, Copy)]
struct CallChecks {
    len: ir::Value,
    depth: ir::Value,
    countdown: ir::Value,
}

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
/// Speculative code (the optimizing tier) inlines deeper and more: it is compiled only for
/// hot Blocks, and an inlined body costs it no guard per site (see `speculate.rs`), while a
/// call would end the speculation (the stdlib's `==` is three levels deep).
pub const SPECULATIVE_INLINE_DEPTH: usize = 4;
pub const SPECULATIVE_INLINE_BUDGET: usize = 64;
/// How many levels of Blocks reached from a callee `may_write_store` looks through.
pub const STORE_WRITER_DEPTH: usize = 3;

/// Everything the translator needs to know about the Code compiled and its VM.
pub struct CodeEnv<'a> {
    /// Read at compile time: the Store values guarded sites specialise on, inlined Codes.
    pub vm: &'a Vm,
    /// The Block compiled (code 0 of a module is its program, run at top level).
    pub block: Value,
    /// Address of the graph's structural epoch.
    pub epoch_ptr: *const u64,
    /// Address of the graph's write counter (`Graph::writes`).
    pub writes_ptr: *const u64,
    /// When set, entry and every return account time on this clock.
    pub clock: Option<*mut helpers::NativeClock>,
    /// When set, speculative code counts here the checks after calls that validated its
    /// assumptions again and went on (`JitStats::revalidated`).
    pub revalidated: Option<*const std::cell::Cell<u64>>,
    /// Allow virtual Registers (off after repeated write-through deopts).
    pub virtual_register: bool,
    /// Allow inlining (off after repeated deopts inside inlined bodies).
    pub inline: bool,
    /// Baseline code of a Block the optimizing tier may take over: on the entry (or chained
    /// round) that brings its execution count to this, the code asks for the optimized
    /// compile (`jit_note_hot`). `None` in optimized code and when that tier is off.
    pub hot_at: Option<u64>,
    /// Speculative code (the optimizing tier, see `speculate.rs`): Store cells resolved and
    /// guards checked once per entry, small Ints unboxed, anything else a deopt exit.
    pub speculate: bool,
    /// What earlier deopts taught (`feedback.rs`): sites lowered generically and paths not
    /// assumed to hold small Ints in speculative code.
    pub feedback: Option<&'a crate::feedback::TypeFeedback>,
    /// Emit run-time checks of the translator's own invariants, trapping when one fails
    /// (`JitConfig::verify`, on in debug builds and in the test suites): a virtual frame's
    /// leave finds the depth its entry left.
    pub check_invariants: bool,
    /// The function index of the quiet trampoline to `jit_poll_ahead` in the module the code
    /// goes into (`quiet_calls.rs`), when the Code continues a chain: a chained loop body's
    /// poll regions take polls early through it. `None`: poll regions leave when the poll is
    /// near.
    pub quiet_poll_ahead: Option<u32>,
    /// Unroll recursion one level: speculative code that calls itself directly inlines its
    /// own Block once into itself, the copy's calls direct (`inline.rs`, `unrolls_here`).
    /// The compiler asks for it when such code keeps running (`JitConfig::unroll_after`).
    pub unroll: bool,
    /// Inline the leaves of direct recursion: at a direct self-call site, the code's own
    /// Block inlined once, each of the copy's own calls of it leaving the copy for a direct
    /// call with the site's arguments (`leaf.rs`). With `unroll`, at the sites of the
    /// unrolled copy.
    pub leaf_inline: bool,
    /// Sink the Store writes of the code's own level even where it may call out (see
    /// `speculate.rs`, "Sunk writes"): for tests of the flushes before leaf helpers and
    /// calls, which code chosen by the estimate rarely reaches.
    pub sink_always: bool,
    /// When set, every question the translation asks of the VM and of the type feedback is
    /// noted here with its answer (`queries.rs`, `replay.rs`): what another VM must answer alike for this
    /// translation to be its own.
    pub log: Option<&'a std::cell::RefCell<crate::queries::QueryLog>>,
}

/// The translator's questions to the VM and to the type feedback go through these, so that a
/// translation can say what it depended on (`CodeEnv::log`, `replay.rs`). Which Code a
/// Block value is (`Vm::block_obj`) needs no note: a Block stands for one Code of its module
/// in every VM, and the values the translator asks about come from answers noted here.
impl<'a> CodeEnv<'a> {
    /// Code `code` of module `module`, with the values its constants push.
    pub fn code(&self, module: u32, code: u32) -> Option<(&'a Code, &'a [Value])> {
        let m = self.vm.module(module)?;
        let c = m.module.codes.get(code as usize)?;
        if let Some(log) = self.log {
            log.borrow_mut().code(module, code);
        }
        Some((c, &m.consts[code as usize]))
    }

    /// The value at a Store path now, if any.
    pub fn store_value(&self, path: &Path) -> Option<Value> {
        let comps: Vec<&str> = path.components.iter().map(|s| &**s).collect();
        let v = self.vm.read_store_path(&comps);
        if let Some(log) = self.log {
            log.borrow_mut().store(self.vm, path, v);
        }
        v
    }

    /// Whether type feedback made the builtin site at `pc` of that Code generic.
    pub fn site_is_wide(&self, module: u32, code: u32, pc: usize) -> bool {
        let wide = self.feedback.is_some_and(|f| f.site_is_wide(module, code, pc));
        if let Some(log) = self.log {
            log.borrow_mut().site(module, code, pc, wide);
        }
        wide
    }

    /// Whether type feedback stopped speculating on the Store path `comps`.
    pub fn path_is_wide(&self, comps: &[String]) -> bool {
        let wide = self.feedback.is_some_and(|f| f.path_is_wide(comps));
        if let Some(log) = self.log {
            log.borrow_mut().path(comps, wide);
        }
        wide
    }
}

/// The namespace of the external names that stand for VM constants (see the module docs);
/// the index of a name is its position in `Translated::vm_consts`.
pub const VM_CONST_NAMESPACE: u32 = 7;

/// The namespace of the external names that stand for helpers (the index is the helper's
/// position in [`Helper::ALL`]): a call of a helper names it, and the install writes its
/// address (`compiler::link_vm_consts`). The process's addresses are the same in every VM,
/// so this keeps nothing of one VM in the function; it only spares each call site the
/// instruction that would make the address.
pub const HELPER_NAMESPACE: u32 = 8;

/// Memory the compiled code refers to (the JIT keeps it as long as the code), and counts.
#[derive(Default)]
pub struct Translated {
    /// The values of the function's VM constants, by index: what the install writes where the
    /// code uses one.
    pub vm_consts: Vec<u64>,
    pub cache_lines: Vec<Box<StoreCacheLine>>,
    pub resume_points: Vec<Box<[ResumePoint]>>,
    /// Speculative code's validation cache (see `speculate.rs`), written by the code itself.
    pub validations: Vec<Box<[std::cell::Cell<u64>]>>,
    /// Blocks of virtual frames made real around calls of unknown values.
    pub frame_lists: Vec<Box<[u64]>>,
    /// Error and deoptimisation exits.
    pub exits: Vec<Box<ExitDesc>>,
    /// Block executions inlined.
    pub inlined: usize,
    /// The Codes inlined (module, code), each once.
    pub inlined_codes: Vec<(u32, u32)>,
    /// Direct self-calls compiled (`direct.rs`).
    pub direct_call_sites: usize,
    /// `choose`s of compares between the same two Ints folded into one compare (`Rel`).
    pub folded_compares: usize,
    /// `_.x.name` reads compiled through the leaf helper (`emit_read_below`).
    pub child_reads: usize,
    /// `!_.n.f` and `_.n.` of record names compiled (`record.rs`).
    pub record_sites: usize,
    /// Runs of a fresh record's field writes made by one call (`record.rs`).
    pub record_batches: usize,
    /// `>isNil` and `>isVoid` compiled inline (`ops.rs`, `gen_is_singleton`).
    pub singleton_tests: usize,
    /// Store cells whose writes the code keeps in registers (`speculate.rs`, "Sunk writes").
    pub sunk_cells: usize,
    /// Chained rounds re-entered inside the round's poll region (`emit_reenter_spec`).
    pub region_reentries: usize,
    /// Overflow checks the loop's bound made unnecessary (`induction.rs`).
    pub bounded_checks: usize,
    /// Overflow checks of a product and the constant added to it made one (`3 >* 1 >+`).
    pub fused_checks: usize,
    /// Nested `choose`s executed as branches to known Blocks (`inline_nested_choice`).
    pub nested_choices: usize,
    /// `chain` loops run under virtual frames, which they make real (`gen_chain`).
    pub realized_chains: usize,
    /// `chain`s of a known Block that call it directly (`gen_chain_known`).
    pub known_chains: usize,
    /// The shadow slots are reserved by the exits, not at entry (`register.rs`, "Slots
    /// reserved by the exits").
    pub exit_reserved_slots: bool,
    /// AL entries flushed for direct self-calls and taken back after them
    /// (`direct.rs`, `retake_flushed`).
    pub retaken_entries: usize,
    /// Register names known to hold an arm's Block inside that arm of a `choose`
    /// (`know_choice_in_arm`).
    pub known_choices: usize,
    /// The Store identities the code speculates on: each guarded `EXEC_STORE` path (as
    /// components) and the bits of the builtin or Block it held at compile time. Code
    /// installed later than it was translated (background compilation) is stale when one of
    /// them no longer holds.
    pub assumptions: Vec<(Vec<String>, u64)>,
    /// Set to 1 when newer code for the same Block is installed: a chained run of this code
    /// then leaves its in-place loop at the next round, so the `chain` loop calls the newer
    /// code (the compiled code reads it at every back edge, and sets it to 2 when it leaves).
    pub superseded: Box<std::cell::Cell<u64>>,
    /// The code speculates (see `speculate.rs`): its deopts recompile it without.
    pub speculative: bool,
    /// What speculative code's pre-header checks, per hoisted Store path, in the order a
    /// pre-header exit's detail numbers them (from 1): `helpers::jit_validate` reads it, the
    /// type feedback and `SOMA_JIT_DUMP=stats` name the paths from it.
    pub hoisted: Box<[helpers::HoistedCheck]>,
    /// The code inlined its own Block into itself (`CodeEnv::unroll`).
    pub unrolled: bool,
    /// Direct self-call sites given a leaf copy (`leaf.rs`).
    pub leaf_copies: usize,
    /// Merges of inlined paths that kept their shared top entries virtual and flushed only
    /// what one path held below them (`join_paths`).
    pub partial_flushes: usize,
    /// The code's own entry, set when it is installed: its direct self-calls call it. Back to
    /// 0 when newer code of the Block is installed: the direct calls then go to that code.
    pub self_entry: Box<std::cell::Cell<u64>>,
    /// Where a direct self-call passes its arguments and gets its result (`direct.rs`).
    pub direct_buf: Box<[std::cell::Cell<u64>]>,
}

/// Why a translation gave up (the compiler retries with less ambition).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bail {
    pub why: &'static str,
    /// The translation had made a leaf copy, or tried to (`leaf.rs`): the retry goes without
    /// them first. Otherwise they had nothing to do with it, and the retry keeps them.
    pub leaf_copies: bool,
}

impl Bail {
    fn new(why: &'static str) -> Bail {
        Bail { why, leaf_copies: false }
    }
}

/// Build the IR of `env.block`'s Code into `func` (whose signature is set here).
pub fn translate(
    func: &mut ir::Function,
    fctx: &mut FunctionBuilderContext,
    env: &CodeEnv,
    frontend: TargetFrontendConfig,
) -> Result<Translated, Bail> {
    let bo = env.vm.block_obj(env.block).ok_or(Bail::new("not a Block"))?;
    let (code, consts) = env.code(bo.module, bo.code).ok_or(Bail::new("unknown code"))?;
    let code_index = bo.code as usize;
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
        sigs: Vec::new(),
        vm_const_names: FxHashMap::default(),
        helper_refs: Vec::new(),
        sunk: Vec::new(),
        sunk_scratch: None,
        table_name: None,
        sunk_dirty: None,
        sunk_flush_in_tail: false,
        call_conv,
        levels: vec![Level {
            code,
            consts,
            block: env.block,
            module: bo.module,
            code_index: bo.code,
            is_program,
            pc: 0,
            call_pc: 0,
            reg,
            virtual_frame: false,
        }],
        slots: None,
        slots_home: None,
        slot_count: 0,
        slot_count_uses: Vec::new(),
        slots_used_in_place: false,
        reserved_count_uses: Vec::new(),
        reservation_insts: Vec::new(),
        lowered_ahead: 0,
        slot_fill: None,
        slot_memo: FxHashMap::default(),
        shared_exit: None,
        max_flush: 0,
        bail: None,
        inlined_instrs: 0,
        exits: FxHashMap::default(),
        exit_key: Vec::new(),
        exit_bodies: Vec::new(),
        out: Translated::default(),
        spec: None,
        vm_state: None,
        slot_vars: None,
        finishing: false,
        writes_var: None,
        body_started: false,
        direct: None,
        poll_region: None,
        poll_bounds: Default::default(),
        induction_guard: None,
        leaf: None,
        leaf_tried: 0,
        dead: false,
    };
    // Speculative code that can write no Store cell has no writes of its own to add at its
    // sync points, and may call itself directly.
    let writes_nothing = env.speculate && !is_program && t.writes_no_store_cell();
    if env.speculate && !is_program {
        t.declare_vm_state();
        t.slot_vars = Some(FxHashMap::default());
        if let Some(args) = t.direct_arity(writes_nothing) {
            t.begin_direct(args);
        }
    }
    if let Some(clock) = env.clock {
        let c = t.vm_const(clock as u64);
        t.helper(At::Main, Helper::TimeBegin, &[c]);
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
    // Speculative code enters it through its pre-header, filled at the end.
    if env.speculate && !is_program {
        let pre = t.b.create_block();
        if t.direct.is_some() {
            t.emit_direct_split(pre);
        } else {
            t.b.ins().jump(pre, &[]);
        }
        let writes = t.b.declare_var(I64);
        let own_writes = t.b.declare_var(I64);
        let epoch = t.b.declare_var(I64);
        t.spec = Some(speculate::Speculation::new(pre, t.levels[0].reg.clone(), writes, own_writes, epoch));
        if !writes_nothing {
            t.writes_var = Some((writes, own_writes));
            t.sink_own_writes(code);
        }
        t.out.speculative = true;
    }
    t.body = t.b.create_block();
    if t.spec.is_none() {
        t.b.ins().jump(t.body, &[]);
    }
    t.b.switch_to_block(t.body);
    t.body_started = true;
    for (pc, &ins) in code.instrs.iter().enumerate() {
        t.levels[0].pc = pc;
        t.join_direct_entry(pc);
        if t.lowered_already() {
            continue;
        }
        t.gen_instr(ins);
        if let Some(reason) = t.bail {
            // The state may no longer make sense (a `_.` of an ended level): stop here.
            return Err(reason);
        }
    }
    // A chained loop's header, aligned at install (`loop_align.rs`).
    let loop_header = (t.spec.is_some() && continues_a_chain(code)).then_some(t.body);
    t.join_direct_entry(code.instrs.len());
    t.finish_body();
    t.finishing = true;
    t.finish_preheader();
    if t.table_name.is_some_and(|(_, k)| t.out.vm_consts[k] == 0) {
        // Flushes load cells from a validation table no pre-header made.
        t.give_up("sunk writes without a validation table");
    }
    t.finish_error_exit();
    t.finish_exits();
    let exits_reserve = t.exits_reserve_slots();
    t.finish_slot_fill(exits_reserve);
    t.finish_poll_regions();
    t.finish_direct_checks();
    // Native stack per nested block matters (deep SOMA recursion runs on it): shrink the
    // flush buffer to what was used.
    let (flush_slot, used) = (t.flush_slot, t.max_flush.max(1));
    let slot_count = t.slot_count;
    let uses = std::mem::take(&mut t.slot_count_uses);
    let reserved_uses = std::mem::take(&mut t.reserved_count_uses);
    let induction_guard = t.induction_guard;
    if let Some(reason) = t.bail {
        return Err(reason);
    }
    let mut out = std::mem::take(&mut t.out);
    for exit in &mut out.exits {
        exit.slot_count = slot_count;
        exit.slots_reserved = !exits_reserve;
    }
    out.exit_reserved_slots = exits_reserve;
    let reservation = std::mem::take(&mut t.reservation_insts);
    t.b.seal_all_blocks();
    t.b.finalize(frontend);
    if exits_reserve {
        for inst in reservation {
            func.layout.remove_inst(inst);
        }
    }
    for inst in uses {
        patch_iconst(func, inst, slot_count as i64);
    }
    for inst in reserved_uses {
        patch_iconst(func, inst, if exits_reserve { 0 } else { slot_count as i64 });
    }
    func.sized_stack_slots[flush_slot].size = (used * 8) as u32;
    if let Some(guard) = induction_guard {
        out.bounded_checks = crate::induction::bound_inductions(func, &guard);
    }
    if let Some(header) = loop_header.filter(|&h| func.layout.is_block_inserted(h)) {
        crate::loop_align::mark_header(func, header);
    }
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

/// Whether a Code's Register can start virtual: it writes names right below `_` (plain
/// names, values in slots) or fields right below a name (record names, `record.rs`: `!_.n.f`,
/// `_.n.`), never both for one name, takes no other CellRef into it (`_.` itself is
/// modelled, see the module docs), and reads names or paths below them (`_.h.key`: a plain
/// name has no children, so that is a read below the cell its value refers to).
fn reg_eligible(code: &Code) -> bool {
    let path = |ins: &Instr| &code.paths[ins.operand as usize];
    // The record names: written as `!_.n.f` or referenced as `_.n.`.
    let records: Vec<Sym> = code
        .instrs
        .iter()
        .filter(|ins| matches!(ins.op, Opcode::SetReg | Opcode::RefReg))
        .filter_map(|ins| match (ins.op, &*path(ins).syms) {
            (Opcode::SetReg, &[n, _]) | (Opcode::RefReg, &[n]) => Some(n),
            _ => None,
        })
        .collect();
    code.instrs.iter().all(|ins| {
        let register_op = matches!(
            ins.op,
            Opcode::LoadReg | Opcode::ExecReg | Opcode::SetReg | Opcode::RefReg | Opcode::SetrefReg
        );
        if !register_op {
            return true;
        }
        let p = path(ins);
        match (ins.op, p.syms.len()) {
            (Opcode::LoadReg | Opcode::ExecReg, 0) => false,
            // A record name's own value is never read or written.
            (Opcode::LoadReg | Opcode::ExecReg | Opcode::SetReg, 1) => !records.contains(&p.syms[0]),
            (Opcode::LoadReg | Opcode::ExecReg, _) => true,
            (Opcode::SetReg, n) => n == 2,
            (Opcode::RefReg, n) => n <= 1,
            (Opcode::SetrefReg, n) => n == 0,
            _ => true,
        }
    })
}

/// Give a [`Translator::placeholder_iconst`] its value.
fn patch_iconst(func: &mut ir::Function, inst: ir::Inst, value: i64) {
    func.dfg.insts[inst] =
        ir::InstructionData::UnaryImm { opcode: ir::Opcode::Iconst, imm: ir::immediates::Imm64::new(value) };
}

/// Whether `code` executes `block` (the running Block, what a `chain` body leaves on top to
/// run again): the mark of a chained loop's body.
pub fn continues_a_chain(code: &Code) -> bool {
    code.instrs.iter().any(|ins| {
        ins.op == Opcode::ExecStore && code.paths[ins.operand as usize].components.iter().map(|c| &**c).eq(["block"])
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

/// Arithmetic builtins lowered inline (the op is also `soma_rt_int_arith`'s argument).
fn arith_op(id: BuiltinId) -> Option<ArithOp> {
    Some(match id {
        BuiltinId::Add => ArithOp::Add,
        BuiltinId::Sub => ArithOp::Sub,
        BuiltinId::Mul => ArithOp::Mul,
        BuiltinId::Div => ArithOp::FloorDiv,
        BuiltinId::Mod => ArithOp::Mod,
        _ => return None,
    })
}

/// Where a helper call is emitted, which decides how the virtual AL can be flushed when the
/// helper's table row asks for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum At {
    /// On the translation's own path: the virtual entries are flushed (they are on the AL
    /// from here on).
    Main,
    /// In a side block that ends by leaving the function (an underflow or error path): the
    /// entries are copied onto the AL, and the main path keeps them virtual.
    Leaving,
    /// In a side block that rejoins the main path (a poll, a cache miss, a slow path): it
    /// cannot flush, so a helper that needs a flushed AL requires an empty virtual AL there.
    Aside,
}

/// The AL-form helper of a guarded builtin (used when its operands are not all virtual).
fn al_form_helper(id: BuiltinId) -> Helper {
    match id {
        BuiltinId::Add => Helper::Add,
        BuiltinId::Sub => Helper::Sub,
        BuiltinId::Mul => Helper::Mul,
        BuiltinId::Div => Helper::Div,
        BuiltinId::Mod => Helper::Mod,
        BuiltinId::Lt => Helper::Lt,
        BuiltinId::Choose => Helper::Choose,
        BuiltinId::Block => Helper::Block,
        BuiltinId::IsNil => Helper::IsNil,
        BuiltinId::IsVoid => Helper::IsVoid,
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
            | BuiltinId::IsNil
            | BuiltinId::IsVoid
    )
}

/// A Code being translated: the compiled one (level 0) or a body inlined into it.
struct Level<'e> {
    code: &'e Code,
    consts: &'e [Value],
    block: Value,
    module: u32,
    /// The index of `code` in its module: with the pc, where an error is (its `line:col` is
    /// looked up when it happens, so that a translation does not depend on positions).
    code_index: u32,
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
    /// The name's symbol (materialisation writes `_.name`).
    sym: Sym,
    /// Written on every path to the instruction being lowered.
    defined: bool,
    /// A record name (`record.rs`): its slot holds a CellRef to the cell it names, which
    /// compiled code made; only paths below it are used.
    record: bool,
    /// The entry written last, when one write reaches here on every path (its SSA values
    /// dominate the reads: reads use it instead of loading the slot).
    info: Option<VValue>,
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
    /// Signatures imported so far (a handful per function: searched, never allocated for).
    sigs: Vec<(&'static [ir::Type], Option<ir::Type>, ir::SigRef)>,
    /// The global value of each VM constant made so far, by its value (one name per value).
    vm_const_names: FxHashMap<u64, ir::GlobalValue>,
    /// The Store cells whose writes speculative code keeps in registers until anything else
    /// could look (`speculate.rs`, "Sunk writes").
    sunk: Vec<speculate::SunkCell>,
    /// Where a flush whose flag is not known at compile time stores when it is clear.
    sunk_scratch: Option<ir::StackSlot>,
    /// The VM constant that stands for the validation table of speculative code, where a
    /// flush finds the sunk cells (made at the first flush, given its value with the
    /// pre-header, which makes the table).
    table_name: Option<(ir::GlobalValue, usize)>,
    /// The one flag of the sunk cells: set by their writes, cleared by a flush (see
    /// `speculate.rs`, "Sunk writes").
    sunk_dirty: Option<cranelift_frontend::Variable>,
    /// The exit blocks being filled leave the sunk writes to their shared tail.
    sunk_flush_in_tail: bool,
    /// The helpers this function calls, imported once each (see [`HELPER_NAMESPACE`]).
    helper_refs: Vec<(Helper, ir::FuncRef)>,
    call_conv: CallConv,
    levels: Vec<Level<'e>>,
    /// Address of the first shadow slot reserved at entry (virtual Register names).
    slots: Option<ir::Value>,
    /// A frame slot holding `slots` (stored once at entry): exits load the address from
    /// there (`exits.rs`, `slots_again`).
    slots_home: Option<ir::StackSlot>,
    /// Shadow slots handed out so far (the count reserved is patched in at the end).
    slot_count: usize,
    slot_count_uses: Vec<ir::Inst>,
    /// Something other than an exit stores into the slots (or reads them from memory): they
    /// must be reserved at entry. Otherwise the exits reserve them (`register.rs`, "Slots
    /// reserved by the exits").
    slots_used_in_place: bool,
    reserved_count_uses: Vec<ir::Inst>,
    /// The instructions that reserve the slots at entry and release them at each return,
    /// removed when the exits reserve them instead.
    reservation_insts: Vec<ir::Inst>,
    /// Instructions after the current one of the current level that its lowering already
    /// covered (a record's consecutive field writes, `record.rs`): the level's loop passes
    /// over them.
    lowered_ahead: usize,
    /// The block `reserve_slots` left for the Void stores, the first slot's address and the
    /// block after (see `finish_slot_fill`).
    slot_fill: Option<(ir::Block, ir::Value, ir::Block)>,
    slot_memo: FxHashMap<(usize, Box<str>), usize>,
    /// The function's shared error exit (level 0, nothing pending), once built.
    shared_exit: Option<ir::Block>,
    /// Largest flush emitted (the flush buffer is sized to it at the end).
    max_flush: usize,
    /// Set when the translation met a shape it does not model.
    bail: Option<Bail>,
    /// Instructions inlined so far (against [`INLINE_BUDGET`]).
    inlined_instrs: usize,
    /// Shared exit blocks by shape (see `exit_target`), and what fills them at the end: the
    /// description, and where each pending entry comes from.
    exits: FxHashMap<Vec<u64>, ir::Block>,
    /// The buffer `exit_target` builds an exit's key in (kept: most keys are found).
    exit_key: Vec<u64>,
    exit_bodies: Vec<(ir::Block, Box<ExitDesc>, Vec<exits::ExitValue>)>,
    out: Translated,
    /// Set while translating speculative code.
    spec: Option<speculate::Speculation>,
    /// VM fields kept in variables (speculative code, see `vmstate.rs`).
    vm_state: Option<vmstate::VmState>,
    /// Variables of the virtual Register slots (speculative code, see `read_slot`).
    slot_vars: Option<FxHashMap<usize, cranelift_frontend::Variable>>,
    /// Set while the blocks at the end (pre-header, exits) are filled: the translation state
    /// is then that of the end of the body, not of the code being emitted.
    finishing: bool,
    /// Speculative code's view of the graph's write counter and its own writes not yet added
    /// to it (see `speculate.rs`), defined from the pre-header on: `body_started` says the
    /// code emitted is past it.
    writes_var: Option<(cranelift_frontend::Variable, cranelift_frontend::Variable)>,
    body_started: bool,
    /// Set when the code may call itself directly (`direct.rs`).
    direct: Option<direct::Direct>,
    /// Speculative code's poll region being translated, and every region's test (`polls.rs`).
    poll_region: Option<polls::PollRegion>,
    poll_bounds: polls::PollBounds,
    /// The pre-header's branch into a loop's body that `induction.rs` makes its entry guard.
    induction_guard: Option<crate::induction::EntryGuard>,
    /// The leaf copy being translated (`leaf.rs`).
    leaf: Option<leaf::LeafCopy>,
    /// Leaf copies begun (`leaf.rs`).
    leaf_tried: usize,
    /// The path being translated left a leaf copy for its direct call: nothing more is
    /// translated on it until a merge takes the state of a path that did not (`leaf.rs`).
    dead: bool,
}

impl<'e> Translator<'_, 'e> {
    // ----- plumbing -----

    /// A number, or an address of the process (a helper): the same in every VM.
    fn iconst(&mut self, bits: u64) -> ir::Value {
        self.b.ins().iconst(I64, bits as i64)
    }

    /// An address owned by this VM (or by this translation): a VM constant, patched in at
    /// install (see the module docs). Never an `iconst`: a VM address in one would make the
    /// functions of two VMs differ, and their code would not be shared.
    fn vm_const(&mut self, addr: u64) -> ir::Value {
        let gv = match self.vm_const_names.get(&addr) {
            Some(&gv) => gv,
            None => {
                let (gv, _) = self.declare_vm_const(addr);
                self.vm_const_names.insert(addr, gv);
                gv
            }
        };
        self.b.ins().symbol_value(I64, gv)
    }

    /// A VM constant whose value is known only later in the translation, and its index, for
    /// [`Self::set_vm_const`].
    fn placeholder_vm_const(&mut self) -> (ir::Value, usize) {
        let (gv, k) = self.declare_vm_const(0);
        (self.b.ins().symbol_value(I64, gv), k)
    }

    /// Give a [`Self::placeholder_vm_const`] its value.
    fn set_vm_const(&mut self, k: usize, addr: u64) {
        self.out.vm_consts[k] = addr;
    }

    fn declare_vm_const(&mut self, addr: u64) -> (ir::GlobalValue, usize) {
        let k = self.out.vm_consts.len();
        self.out.vm_consts.push(addr);
        let name = ir::UserExternalName::new(VM_CONST_NAMESPACE, k as u32);
        let name = self.b.func.declare_imported_user_function(name);
        let gv = self.b.create_global_value(ir::GlobalValueData::Symbol {
            name: ir::ExternalName::User(name),
            offset: ir::immediates::Imm64::new(0),
            colocated: false,
            tls: false,
        });
        (gv, k)
    }

    /// The bits of a Value known at compile time: a VM constant when it refers to the heap
    /// (a Str, a Block: the VM's own objects), else a number (an Int, a builtin, Nil...).
    fn value_const(&mut self, bits: u64) -> ir::Value {
        // SAFETY: only the tag is looked at; no reference is made from the bits.
        if unsafe { Value::from_bits(bits) }.is_heap() {
            self.vm_const(bits)
        } else {
            self.iconst(bits)
        }
    }

    /// An `iconst` of type `ty` standing for a value known only later in the translation, and
    /// its instruction, for [`patch_iconst`].
    fn placeholder_iconst(&mut self, ty: ir::Type) -> (ir::Value, ir::Inst) {
        let v = self.b.ins().iconst(ty, 0);
        (v, self.b.func.dfg.value_def(v).unwrap_inst())
    }

    /// Seal blocks whose predecessors are all emitted (the branch just made was their only
    /// way in): variables read in them then resolve at once, through their one predecessor,
    /// instead of through a block parameter that is only removed at the end. What the
    /// translator asks of a value at compile time ([`Self::known_iconst`]) sees through them.
    fn seal_blocks(&mut self, blocks: &[ir::Block]) {
        for &b in blocks {
            self.b.seal_block(b);
        }
    }

    /// The value `v` has when it is an `iconst` (after aliases are resolved).
    fn known_iconst(&self, v: ir::Value) -> Option<i64> {
        iconst_value(&self.b.func.dfg, v)
    }

    fn sig(&mut self, params: &'static [ir::Type], ret: Option<ir::Type>) -> ir::SigRef {
        if let Some(&(_, _, s)) = self.sigs.iter().find(|&&(p, r, _)| p == params && r == ret) {
            return s;
        }
        let mut sig = Signature::new(self.call_conv);
        sig.params.extend(params.iter().map(|&t| AbiParam::new(t)));
        sig.returns.extend(ret.map(AbiParam::new));
        let s = self.b.import_signature(sig);
        self.sigs.push((params, ret, s));
        s
    }

    /// Call helper `h` from where the code is being emitted (`at`), doing the flush its table
    /// row asks for in the way that place allows; returns its result (if any).
    fn helper(&mut self, at: At, h: Helper, args: &[ir::Value]) -> Option<ir::Value> {
        let e = h.entry();
        if e.needs_flushed_al() {
            match at {
                At::Main => self.flush(),
                At::Leaving => self.flush_copy(),
                At::Aside => assert!(
                    self.vs.is_empty(),
                    "{} needs the virtual AL flushed, and a side path cannot flush it",
                    e.name
                ),
            }
        }
        let dfg = &self.b.func.dfg;
        assert!(
            args.len() == e.params.len() && args.iter().zip(e.params).all(|(&a, &t)| dfg.value_type(a) == t),
            "the arguments of {} do not match its row",
            e.name
        );
        if e.leaf {
            // A leaf reads and writes the graph: the cells must hold the code's writes.
            self.flush_sunk_writes();
            return self.emit_call(h, args);
        }
        // The helper sees (and may change) the VM fields speculative code keeps in registers,
        // and may collect (the Register slots are roots). `jit_exit` returns to the caller.
        if h == Helper::Exit {
            self.sync_vm_state_to_leave();
        } else {
            self.sync_vm_state();
        }
        // The slots are roots for the collector only: a helper that cannot collect needs them
        // no more current than it needs the virtual AL flushed (`needs_flushed_al`).
        if self.slot_vars.is_some() && !self.finishing && e.collects {
            let slots = self.root_slots();
            self.sync_slots(&slots);
        }
        let result = self.emit_call(h, args);
        self.reload_vm_state();
        result
    }

    /// The call instruction of helper `h` alone: whatever it needs around it (see
    /// [`Self::helper`]) is the caller's to emit.
    fn emit_call(&mut self, h: Helper, args: &[ir::Value]) -> Option<ir::Value> {
        let callee = self.helper_ref(h);
        let inst = self.b.ins().call(callee, args);
        self.b.inst_results(inst).first().copied()
    }

    /// `h` as a function this one calls: an external name in [`HELPER_NAMESPACE`], whose
    /// address the install writes where the code loads it. Not colocated: the helpers are in
    /// the shared library, too far from the JIT's memory for a relative call.
    fn helper_ref(&mut self, h: Helper) -> ir::FuncRef {
        if let Some(&(_, f)) = self.helper_refs.iter().find(|&&(x, _)| x == h) {
            return f;
        }
        let e = h.entry();
        let signature = self.sig(e.params, e.ret);
        let name = ir::UserExternalName::new(HELPER_NAMESPACE, h as u32);
        let name = self.b.func.declare_imported_user_function(name);
        let f = self.b.import_function(ir::ExtFuncData {
            name: ir::ExternalName::User(name),
            signature,
            colocated: false,
            patchable: false,
        });
        self.helper_refs.push((h, f));
        f
    }

    /// Call a helper that returns a status ([`Self::helper`]).
    fn helper_status(&mut self, at: At, h: Helper, args: &[ir::Value]) -> ir::Value {
        let st = self.helper(at, h, args);
        st.unwrap_or_else(|| panic!("{} returns no status", h.entry().name))
    }

    fn out_addr(&mut self) -> ir::Value {
        self.b.ins().stack_addr(I64, self.out_slot, 0)
    }

    /// The flush buffer's address (the entries a flush or an exit hands over).
    fn flush_addr(&mut self) -> ir::Value {
        self.b.ins().stack_addr(I64, self.flush_slot, 0)
    }

    fn load_out(&mut self) -> ir::Value {
        self.b.ins().stack_load(I64, I64, self.out_slot, 0)
    }

    /// Whether the instruction the level's loop is at was lowered with an earlier one
    /// ([`Translator::lowered_ahead`]); counts it off.
    fn lowered_already(&mut self) -> bool {
        let covered = self.lowered_ahead > 0;
        self.lowered_ahead = self.lowered_ahead.saturating_sub(1);
        covered
    }

    fn give_up(&mut self, why: &'static str) {
        let leaf_copies = self.leaf_tried > 0;
        self.bail.get_or_insert(Bail { why, leaf_copies });
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
        let line = Box::new(StoreCacheLine::empty());
        let p = &*line as *const StoreCacheLine as u64;
        self.out.cache_lines.push(line);
        p
    }

    /// Where an error of the instruction being lowered is: its Code's index in the module and
    /// its pc (`helpers::position_error` finds the `line:col`). Not the position itself: two
    /// Codes that differ only in where they stand in their sources (a test file's copies of a
    /// helper) then translate to the same function, which the code cache and replays share.
    fn error_site(&self) -> (u32, u32) {
        let l = self.lvl();
        (l.code_index, l.pc as u32)
    }

    fn gen_instr(&mut self, ins: Instr) {
        let k = ins.operand as usize;
        match ins.op {
            Opcode::Const => self.gen_const(k),
            Opcode::LoadStore => self.gen_load_store(k),
            Opcode::LoadReg => self.gen_load_reg(k),
            Opcode::RefStore => self.gen_ref_store(k),
            Opcode::RefReg => self.gen_ref_reg(k),
            Opcode::SetStore => self.gen_set_store(k),
            Opcode::SetReg => self.gen_set_reg(k),
            Opcode::SetrefStore => {
                // Its write would move the write counter the check after it compares: a
                // deopt every time.
                self.impure("a `!path.` in speculative code");
                self.gen_path_helper(Helper::SetRefStore, k)
            }
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
        match entries.iter().map(|e| e.value().map(|v| v.val)).collect() {
            Some(vals) => self.emit_push(vals),
            None => self.give_up("a virtual `_.` escapes"),
        }
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
        // One address for all the stores (`stack_store` would compute it once per value).
        let base = self.flush_addr();
        for (i, &v) in vals.iter().enumerate() {
            self.b.ins().store(flags, v, base, (i * 8) as i32);
        }
        let n = self.iconst(vals.len() as u64);
        // The status is ignored: pushing cannot fail (a panic would be an allocation abort).
        self.helper_status(At::Main, Helper::PushN, &[self.vm, base, n]);
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
    fn ensure_virtual(&mut self, n: usize, al_form: Helper) {
        let missing = n.saturating_sub(self.vs.len());
        if missing == 0 {
            return;
        }
        let vals = self.emit_take(missing, |t| {
            // The AL holds fewer than `n` values in all: the helper fails on underflow.
            let st = t.helper_status(At::Leaving, al_form, &[t.vm]);
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

}

mod direct;
pub(crate) use direct::runs_block;
mod exits;
mod inline;
mod leaf;
mod ops;
mod polls;
mod record;
mod register;
mod speculate;
mod vmstate;
