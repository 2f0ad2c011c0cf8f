//! Speculative lowering, the optimizing tier's own: what baseline code checks at every site on
//! every round, optimized code checks once, in a *pre-header*, and then assumes.
//!
//! # What is assumed
//! A speculative translation resolves every Store path of the code (its own and those of the
//! bodies it inlines) to a cell in the pre-header, which runs before the body on entry and
//! again before a chained round that follows a host poll. There it checks, once:
//!
//! * every path resolves (its cell exists);
//! * each guarded `EXEC_STORE` path holds the builtin or Block it held at compile time;
//! * a path that held a small Int at compile time holds one now;
//! * a path the code writes holds no CellRef (so a write is a plain store), and its cell is
//!   none of the other paths' cells (walks follow CellRefs, so two paths can share a cell).
//!
//! Any failure is a deoptimisation exit at instruction 0: the executor runs the round.
//!
//! # Why the assumptions hold until the code leaves
//! Between the pre-header and the next call, exit or host poll, nothing but the code itself
//! runs, so the only writes to the hoisted cells are its own inline stores, every guarded
//! cell keeps its value, and no cell is unlinked (nor collected: every hoisted cell is
//! reachable from the Store). The cells' values then live in SSA variables: a read is a
//! register, a loop-invariant read is a load in the pre-header. Writes of the code's own
//! level store to the cell only when something else could look (see "Sunk writes"); the
//! others store at once.
//!
//! A call (a Block not inlined, `chain`, a builtin, a helper-form operation) may run
//! anything. After it the code compares the structural epoch and the graph's write counter
//! (`Graph::writes`) with what it saw ([`Translator::spec_after_call`]): unchanged, nothing was
//! written or moved and the code goes on; changed, it leaves through a deoptimisation exit
//! that resumes at the next instruction. The code's own writes are counted in a register and
//! added to the graph's counter wherever anything else could look (`vmstate.rs`).
//!
//! A translation gives up speculating (the compiler then translates without) only for a
//! Store path that does not exist at compile time, a write to a path it also guards, and a
//! Store write through a helper.
//!
//! # Validation cache
//! A pre-header that checked everything records the epoch and the write count with every
//! cell and value; the next entry that finds both counts unchanged loads them instead of
//! checking again (see [`Translator::finish_preheader`]).
//!
//! # Sunk writes
//! A chained loop's body writes its Store paths every round (`n 1 >+ !n`, collatz's `!c.n`
//! and `!c.steps`); a store each, and for an Int the boxing before it. Nothing but the code
//! itself can see a hoisted cell between two points where something else could look: a
//! helper (a leaf too, as it reads or writes the graph), a call, an exit, a return. So the
//! code keeps the cells it writes in its own level in its variables, with one flag that each
//! such write sets, and stores them all (boxing an Int) at those points only, where the flag
//! is set (`flush_sunk_writes`, from `sync_write_count`, which every such point runs, from
//! `helper` for leaves, and once in the exits' shared tail for all of them). A store whose
//! flag is not known at compile time is made without a branch: to the cell when the flag is
//! set, else to a scratch slot of the frame. A loop whose rounds call nothing stores nothing
//! per round: the value goes around the loop in a register, and into its cell when the loop
//! leaves, polls, deoptimizes or fails.
//!
//! One flag serves every sunk cell: a cell the code did not write since the last flush holds
//! what its variables hold (the pre-header, a flush and a check after a call each make them
//! equal, and nothing else writes the cell in between), so storing it again changes nothing.
//! The sunk writes are not counted one by one either: the flag itself is the count (`Graph::
//! writes` is only ever compared for equality, so writes between two sync points may count as
//! one), added to the code's other writes where it is cleared or synced. A loop's rounds then
//! carry one constant flag and no counter.
//!
//! Why nothing can see a stale cell:
//! * every other reader of the Store runs at a flush point: helpers (the host, `jit_exec`,
//!   the collector, which only runs inside helpers), compiled code called natively (its call
//!   checks sync), the executor after an exit or an error (exit blocks and error paths
//!   sync before `jit_exit` / `jit_error_at`), Python after a return;
//! * the code's own reads of a written path are its variables, and no other hoisted path
//!   shares its cell (the pre-header's alias check); a record read below a CellRef to the
//!   cell's parent goes through a leaf helper, which flushes first;
//! * only code whose level, as far as [`Translator::may_call_out`] can tell, calls nothing
//!   sinks its writes: where a round calls out, the stores would only move to the call;
//! * the cells are those of the code's own level: their SET_STORE instructions all run when
//!   the level runs to its end, so they are hoisted (and their flags declared) before any
//!   flush point is translated, and every flush point knows every sunk cell. Writes in
//!   inlined bodies, which may or may not run, store at once. A path holding a CellRef keeps
//!   its stores (a write is checked against write-through there);
//! * a flag is cleared only by a flush, and set only after the pre-header defined the cell
//!   and value variables, so a flush stores only where they hold the cell and its new value.
//!   The pre-header (entry, or after the host poll, which flushed) starts with every flag
//!   clear; a check after a call finds them clear (the call flushed).
//!
//! The writes are still counted in `own_writes` as they happen and added to the graph's
//! counter at the same points, after the stores.
//!
//! # Unboxed Ints
//! A path that holds a small Int keeps its integer in a variable too; every write to it must
//! be a small Int (known, or tag-tested with a deopt exit otherwise). Arithmetic and `<` on
//! operands known to be small Ints need no tag test; an operand that is not one, an overflow
//! or a zero divisor is a deoptimisation exit at the builtin's instruction with its operands
//! back on the AL, where the executor produces the BigInt, the error or the other type's
//! result. After repeated deopts the compiler recompiles the Block without speculation (the
//! wider types: today's generic fast paths with their slow-path helpers).

use super::*;
use super::vmstate::VmField;
use cranelift_frontend::Variable;
use soma_runtime::cell::{CELL_FLAGS_OFFSET, CELL_WALKED_THROUGH};
use soma_runtime::value::{SMALL_INT_MAX, SMALL_INT_MIN};

/// The most unguarded paths the inline re-check of the validation table tests one after the
/// other (`emit_recheck_values`); past it, a loop over the table.
const MAX_STRAIGHT_RECHECKS: usize = 8;

/// A hoisted cell whose writes are sunk (see "Sunk writes" in the module docs): its
/// variables (the flag is the translation's one, `Translator::sunk_dirty`). Kept apart from
/// its `Hoisted` entry because exits are filled after the pre-header took the speculation
/// state.
#[derive(Clone, Copy)]
pub(super) struct SunkCell {
    /// Its index among the hoisted cells: its entry in the validation table, which holds the
    /// cell (a flush loads it from there, see `flush_sunk_writes`).
    index: usize,
    value: Variable,
    int: Option<Variable>,
}

/// The state of a speculative translation.
pub(super) struct Speculation {
    /// The pre-header: filled at the end (`finish_preheader`), once every hoisted cell and
    /// guard is known; the body's uses of the variables reach it through SSA construction.
    pub pre: ir::Block,
    /// The graph's write counter as it would be had only this code written since the
    /// pre-header (it advances by the code's own writes when they are added): after a call,
    /// any other write, then or earlier, makes the counter differ.
    pub writes: Variable,
    /// The code's own writes not yet added to the graph's counter: they are counted in a
    /// register and added where anything else could look (`sync_vm_state`). Adding, never
    /// storing the register's idea of the count, so that no other code's writes are lost.
    pub own_writes: Variable,
    /// The structural epoch read in the pre-header.
    epoch: Variable,
    /// Level 0's Register mode at entry: the pre-header's exit resumes at instruction 0.
    pub entry_reg: RegMode,
    pub cells: Vec<Hoisted>,
    /// Checks after calls that validate again instead of leaving
    /// ([`Translator::spec_after_call_revalidating`]), filled with the pre-header, when every
    /// hoisted cell is known.
    reloads: Vec<Revalidation>,
    /// Constants that stand for the validation table and checks, which are made with the
    /// pre-header: patched then.
    table_consts: Vec<(TableSlot, TableConst)>,
    /// The deepest nesting (levels above level 0) at which a virtual frame was entered: the
    /// frames' depth checks are made once, in the pre-header (`finish_preheader`), against
    /// the deepest one. Level 0's frame keeps its depth through every round of a chained loop,
    /// so the frames of a round sit at the same depths every round.
    pub frame_nesting: Option<usize>,
    /// The body's end loops to the next round without asking whether a `chain` loop runs
    /// this code (`finish_body`): the pre-header makes sure one does (`NotChained`).
    pub chained_only: bool,
}

/// Where a constant patched by `finish_preheader` is: a number's `iconst`, or an address's
/// VM constant.
#[derive(Clone, Copy)]
enum TableSlot {
    Iconst(ir::Inst),
    VmConst(usize),
}

/// What a constant patched by `finish_preheader` stands for.
#[derive(Clone, Copy)]
enum TableConst {
    /// The address of the checks (`helpers::HoistedCheck`, one per hoisted cell).
    Checks,
    /// Their number.
    Count,
    /// The address of the validation table.
    Table,
}

/// A Store path of the code whose cell is resolved once, in the pre-header.
pub(super) struct Hoisted {
    comps: Vec<String>,
    /// A `Path` with these components (for the resolve helper).
    path: u64,
    cell: Variable,
    value: Variable,
    /// Its integer, when the path holds a small Int throughout.
    int: Option<Variable>,
    /// The path holds a CellRef throughout (in a cell no lookup walks through): writes of
    /// CellRefs replace it with plain stores.
    holds_ref: bool,
    /// The builtin or Block a guarded `EXEC_STORE` expects.
    guard: Option<u64>,
    written: bool,
    /// Writes to the cell are sunk (see "Sunk writes"): the flag that says whether the
    /// variables hold a value the cell does not.
    dirty: Option<Variable>,
    /// The body reads the value (or integer) variable, or stores through the cell variable:
    /// the pre-header defines only the variables the body uses (a load each).
    value_used: bool,
    cell_used: bool,
}

/// The counters an inline re-check of the validation table compares: the graph's epoch and
/// write count just read, and the epoch the table was filled under.
#[derive(Clone, Copy)]
struct Counters {
    epoch: ir::Value,
    writes: ir::Value,
    seen_epoch: ir::Value,
}

/// A check after a call that validates again: the counters read after the call (`writes`,
/// `epoch`), the block that re-checks the values inline (`recheck`, as the pre-header does),
/// the helper's block when that is not enough (`full`), the block that reloads the
/// variables from the validation table (`reload`) and the block it continues in (`cont`).
struct Revalidation {
    writes: ir::Value,
    epoch: ir::Value,
    recheck: ir::Block,
    full: ir::Block,
    reload: ir::Block,
    cont: ir::Block,
}

impl Speculation {
    /// Whether the code writes a hoisted Store cell itself.
    pub(super) fn writes_cells(&self) -> bool {
        self.cells.iter().any(|c| c.written)
    }

    pub(super) fn new(pre: ir::Block, entry_reg: RegMode, writes: Variable, own_writes: Variable, epoch: Variable) -> Speculation {
        Speculation {
            pre,
            writes,
            own_writes,
            epoch,
            entry_reg,
            cells: Vec::new(),
            frame_nesting: None,
            chained_only: false,
            reloads: Vec::new(),
            table_consts: Vec::new(),
        }
    }
}

impl<'e> Translator<'_, 'e> {
    /// Whether the instruction being lowered is speculative code (the program is never).
    pub(super) fn speculating(&self) -> bool {
        self.spec.is_some() && !self.lvl().is_program
    }

    /// Whether the translation can emit no Store write: no Code it could inline (they lie at
    /// most `SPECULATIVE_INLINE_DEPTH` levels below) writes a Store path. Such code never
    /// counts writes of its own, and it may call itself directly (`direct.rs`).
    pub(super) fn writes_no_store_cell(&self) -> bool {
        let Some(me) = self.env.vm.block_obj(self.env.block) else { return false };
        let mut seen = Vec::new();
        !self.code_may_write_store(me.module, me.code, SPECULATIVE_INLINE_DEPTH, &mut seen)
    }

    /// Whether the speculative code may loop its chained rounds without asking, each round,
    /// whether a `chain` loop runs it. A round's end asks it otherwise (`finish_body`): a
    /// compare of the entry's `chained` argument, a stack load once the loop's registers are
    /// taken, and a branch, in every round. Asked once, in the pre-header, instead, an
    /// ordinary call leaves there for the executor (`NotChained`), and after such exits type
    /// feedback makes the recompile ask every round again. Not where the code calls itself
    /// directly: a direct run enters past the pre-header and must return, not loop.
    pub(super) fn may_assume_chained(&self) -> bool {
        let direct_calls = self.direct.as_ref().is_some_and(|d| d.used);
        let l = &self.levels[0];
        !direct_calls
            && self.spec.is_some()
            && !self.env.vm.block_obj(l.block).is_some_and(|b| self.env.site_is_wide(b.module, b.code, crate::feedback::ENTRY_SITE))
    }

    /// Whether type feedback makes the builtin site being lowered generic (`feedback.rs`).
    pub(super) fn site_is_wide(&self) -> bool {
        self.site_is_wide_at(self.lvl().pc)
    }

    /// [`Self::site_is_wide`] for instruction `pc` of the current level.
    fn site_is_wide_at(&self, pc: usize) -> bool {
        let l = self.lvl();
        self.env
            .vm
            .block_obj(l.block)
            .is_some_and(|b| self.env.site_is_wide(b.module, b.code, pc))
    }

    /// In speculative code, a write the code cannot keep in its variables (through a helper)
    /// ends the translation (the compiler retries without speculation).
    pub(super) fn impure(&mut self, what: &'static str) {
        if self.spec.is_some() {
            self.give_up(what);
        }
    }

    /// After a call: whether the graph's write counter and the structural epoch are what the
    /// code last saw (an `i8`), with the two counters read.
    fn counters_unchanged(&mut self) -> Option<(ir::Value, ir::Value, ir::Value)> {
        let spec = self.spec.as_ref()?;
        let (wv, ev) = (spec.writes, spec.epoch);
        let flags = MemFlagsData::trusted();
        let wa = self.vm_const(self.env.writes_ptr as u64);
        let w = self.b.ins().load(I64, flags, wa, 0);
        let ea = self.vm_const(self.env.epoch_ptr as u64);
        let e = self.b.ins().load(I64, flags, ea, 0);
        let known_w = self.b.use_var(wv);
        let known_e = self.b.use_var(ev);
        let same_w = self.b.ins().icmp(IntCC::Equal, w, known_w);
        let same_e = self.b.ins().icmp(IntCC::Equal, e, known_e);
        Some((self.b.ins().band(same_w, same_e), w, e))
    }

    /// A deoptimisation site resuming at `pc` for `reason`, whose detail is `checked` (what
    /// `jit_validate` returned: nonzero, the detail plus one).
    fn site_with_detail(&mut self, pc: usize, reason: DeoptReason, checked: ir::Value) -> ir::Value {
        let detail = self.b.ins().iadd_imm_s(checked, -1);
        let detail = self.b.ins().ishl_imm_s(detail, deopt::DETAIL_SHIFT as i64);
        let base = self.iconst(deopt::encode_site(pc, reason, 0));
        self.b.ins().bor(base, detail)
    }

    /// After a call that may have run anything (a Block, a builtin, a helper): when any cell
    /// was written or the Store's shape changed meanwhile, what the code holds may be stale,
    /// so it leaves through a deoptimisation exit that resumes at the next instruction (the
    /// call's results are on the AL). Otherwise every hoisted cell, value and guard still
    /// holds, and the code goes on speculating.
    pub(super) fn spec_after_call(&mut self) {
        let Some((ok, _, _)) = self.counters_unchanged() else { return };
        let next = self.lvl().pc + 1;
        self.deopt_unless_at(ok, &[], next, DeoptReason::StoreChangedByCall);
    }

    /// After a call of a Block known to write cells (its writes would fail
    /// [`Self::spec_after_call`]'s check after every call, a deopt each time, then a recompile
    /// without speculation): when the counters moved, check every assumption again, as the
    /// pre-header does (`jit_validate`, which also refills the validation table), and go on
    /// with the variables reloaded from the table. Only a failed check leaves, through a
    /// deoptimisation exit at the next instruction whose detail names the cell, as the
    /// pre-header's does (type feedback widens that path). Memory is current here: the call
    /// made it so, and the code has not written since.
    pub(super) fn spec_after_call_revalidating(&mut self) {
        let Some((ok, w, e)) = self.counters_unchanged() else { return };
        if let Some(d) = self.direct.as_mut() {
            d.revalidates = true;
        }
        let cont = self.b.create_block();
        let check = self.b.create_block();
        self.b.ins().brif(ok, cont, &[], check, &[]);
        self.b.seal_block(check);

        self.b.switch_to_block(check);
        let spec = self.spec.as_ref().expect("speculating");
        let (wv, ev) = (spec.writes, spec.epoch);
        self.b.def_var(wv, w);
        self.b.def_var(ev, e);
        let recheck = self.b.create_block();
        self.b.ins().jump(recheck, &[]);
        self.b.seal_block(recheck);

        // The helper, when the inline re-check (filled with the pre-header) cannot judge.
        let full = self.b.create_block();
        self.b.set_cold_block(full);
        self.b.switch_to_block(full);
        let checks = self.table_const(TableConst::Checks);
        let count = self.table_const(TableConst::Count);
        let tab = self.table_const(TableConst::Table);
        let r = self.helper(At::Main, Helper::Validate, &[self.vm, checks, count, tab, e, w]).expect("a result");
        let fail = self.b.create_block();
        let reload = self.b.create_block();
        self.b.set_cold_block(fail);
        self.b.ins().brif(r, fail, &[], reload, &[]);
        self.b.seal_block(fail);
        self.b.switch_to_block(fail);
        let next = self.lvl().pc + 1;
        let site = self.site_with_detail(next, DeoptReason::StoreChangedByCall, r);
        self.emit_deopt_site(site);
        // `recheck` and `reload` are filled with the pre-header (`full` and `reload` get their
        // other predecessors then); `cont` stays unsealed until then, so that the variables
        // read after this point see its definitions.
        let site = Revalidation { writes: w, epoch: e, recheck, full, reload, cont };
        self.spec.as_mut().expect("speculating").reloads.push(site);
        self.b.switch_to_block(cont);
    }

    /// A constant standing for `what`, patched when the pre-header makes the table.
    fn table_const(&mut self, what: TableConst) -> ir::Value {
        let (v, slot) = match what {
            TableConst::Count => {
                let (v, inst) = self.placeholder_iconst(I64);
                (v, TableSlot::Iconst(inst))
            }
            TableConst::Checks | TableConst::Table => {
                let (v, k) = self.placeholder_vm_const();
                (v, TableSlot::VmConst(k))
            }
        };
        self.spec.as_mut().expect("speculating").table_consts.push((slot, what));
        v
    }

    /// The hoisted cell of Store path `k` of the current level (hoisted on first use). A path
    /// without a cell at compile time would be created by this code: the translation gives up.
    fn hoisted(&mut self, k: usize) -> Option<usize> {
        let path = self.path(k);
        let comps: Vec<String> = path.components.iter().map(|c| c.to_string()).collect();
        if let Some(i) = self.spec.as_ref()?.cells.iter().position(|c| c.comps == comps) {
            return Some(i);
        }
        let Some(seen) = self.store_value_at_compile_time(path) else {
            self.give_up("a Store path without a cell in speculative code");
            return None;
        };
        let cell = self.b.declare_var(I64);
        let value = self.b.declare_var(I64);
        let wide = self.env.path_is_wide(&comps);
        let int = seen.as_small_int().filter(|_| !wide).map(|_| self.b.declare_var(I64));
        let holds_ref = seen.is_cell_ref() && !wide;
        let path = self.path_ptr(k);
        let cells = &mut self.spec.as_mut()?.cells;
        cells.push(Hoisted {
            comps,
            path,
            cell,
            value,
            int,
            holds_ref,
            guard: None,
            written: false,
            dirty: None,
            value_used: false,
            cell_used: false,
        });
        Some(cells.len() - 1)
    }

    /// Sink the writes of `code` (level 0, being translated speculatively) to the Store paths
    /// it writes itself (see "Sunk writes"). Its own SET_STORE instructions all run when the
    /// code runs to its end (a Code has no branches), so their cells are hoisted now, before
    /// any flush point is translated: every flush point then knows every sunk cell. A path
    /// that holds a CellRef keeps its stores (its writes are checked against write-through).
    pub(super) fn sink_own_writes(&mut self, code: &'e Code) {
        // A round that calls out flushes at each call: its stores move there, and every
        // flush point's stores make the code larger for nothing.
        let Some(me) = self.env.vm.block_obj(self.env.block) else { return };
        if !self.env.sink_always && self.may_call_out(me.module, me.code, SPECULATIVE_INLINE_DEPTH, &mut Vec::new()) {
            return;
        }
        for ins in &code.instrs {
            if ins.op != Opcode::SetStore {
                continue;
            }
            let Some(i) = self.hoisted(ins.operand as usize) else { return };
            let Some(spec) = self.spec.as_mut() else { return };
            let c = &mut spec.cells[i];
            if c.holds_ref || c.dirty.is_some() {
                continue;
            }
            let dirty = *self.sunk_dirty.get_or_insert_with(|| self.b.declare_var(types::I8));
            c.dirty = Some(dirty);
            let sunk = SunkCell { index: i, value: c.value, int: c.int };
            self.sunk.push(sunk);
            self.out.sunk_cells += 1;
        }
    }

    /// Whether running Code `code` of `module` may call out of compiled code: `chain` or a
    /// builtin lowered through a helper, a record name or a read below a Register name (leaf
    /// helpers), a Block that runs itself (it is in `running`) or lies deeper than `depth`,
    /// a value not known at compile time. A Block the code only references (a literal, a
    /// Store value) counts as run: it is usually handed to something that runs it (`ifelse`'s
    /// arms, run by its `>_.go`, which is why executing a Register adds nothing itself). An
    /// estimate for [`Self::sink_own_writes`]: a wrong one costs speed, never correctness.
    fn may_call_out(&self, module: u32, code: u32, depth: usize, running: &mut Vec<(u32, u32)>) -> bool {
        if running.contains(&(module, code)) {
            return true;
        }
        let Some((c, _)) = self.env.code(module, code) else { return true };
        let block_of = |v: Value| self.env.vm.block_obj(v).map(|b| (b.module, b.code));
        // The Blocks the code runs or references, scanned alike.
        let mut run = Vec::new();
        for ins in &c.instrs {
            let k = ins.operand as usize;
            match ins.op {
                Opcode::ExecStore => {
                    let Some(v) = self.store_value_at_compile_time(&c.paths[k]) else { return true };
                    if let Some(p) = v.as_builtin_obj() {
                        // SAFETY: builtin objects are VM roots for the VM's whole life.
                        let id: BuiltinId = unsafe { (*p.as_ptr()).id };
                        if !is_specialised(id) || id == BuiltinId::Chain {
                            return true;
                        }
                    } else {
                        match block_of(v) {
                            Some(b) => run.push(b),
                            None => return true,
                        }
                    }
                }
                Opcode::ExecConst => match c.consts[k] {
                    soma_runtime::decode::Const::Block(inner) => run.push((module, inner)),
                    _ => return true,
                },
                // Below a Register name (`_.t.key`, `!_.n.f`, `_.n.`): leaf helpers, which
                // read and write the graph, so a flush comes before each.
                Opcode::LoadReg | Opcode::SetReg | Opcode::RefReg | Opcode::SetrefReg
                    if c.paths[k].components.len() > 1 || ins.op == Opcode::RefReg =>
                {
                    return true;
                }
                Opcode::Const => {
                    if let soma_runtime::decode::Const::Block(inner) = c.consts[k] {
                        run.push((module, inner));
                    }
                }
                Opcode::LoadStore => {
                    if let Some(b) = self.store_value_at_compile_time(&c.paths[k]).and_then(block_of) {
                        run.push(b);
                    }
                }
                // `>_.name` runs a Block the code was given or referenced: scanned there.
                _ => {}
            }
        }
        running.push((module, code));
        let out = run.into_iter().any(|(m, c)| depth == 0 || self.may_call_out(m, c, depth - 1, running));
        running.pop();
        out
    }

    /// Store into each sunk cell the value its variables hold when a write since the last
    /// flush left it dirty, and clear the flags: wherever anything but this code could look
    /// at the Store, before every helper (leaves too: they read the graph) and every call,
    /// in every exit and at every return (`sync_write_count`, `helper`). Where the flag is
    /// known (right after a write, or after another flush) the store is plain or left out.
    /// Otherwise it is made without a branch, to the cell when the flag is set and else to a
    /// scratch slot of the frame: on a path where no write happened the variables may not
    /// even be defined (an exit of the pre-header), and then only the scratch slot gets them.
    pub(super) fn flush_sunk_writes(&mut self) {
        if self.sunk_flush_in_tail {
            return;
        }
        let Some(flag) = self.sunk_dirty.filter(|_| !self.sunk.is_empty()) else { return };
        let dirty = self.b.use_var(flag);
        let known = self.known_iconst(dirty);
        if known == Some(0) {
            return;
        }
        // The flag counts as one write of the code's own (see "Sunk writes").
        self.count_own_writes(dirty);
        let flags = MemFlagsData::trusted();
        // Where a store whose flag is clear goes: `CELL_VALUE_OFFSET` into the scratch slot,
        // as into a cell (made at the first such store of the flush).
        let mut scratch = None;
        let table = self.validation_table();
        for i in 0..self.sunk.len() {
            let s = self.sunk[i];
            // The cell, from the table rather than its variable: that variable, kept for the
            // flushes only (exits, polls), would be live through every loop round, and the
            // register allocator moved it in and out of a register every round. Where the flag
            // is set, the table holds the same cell: the variable was loaded from it, and
            // rewriting it takes a call or a poll, which flush first and clear the flag (after
            // one, either nothing moved, so the table holds the same cells, or the code
            // validates again from the table, or leaves).
            let entry = helpers::TABLE_ENTRIES + helpers::TABLE_ENTRY_SIZE * s.index as i32;
            let cell = self.b.ins().load(I64, flags, table, entry);
            let v = match s.int {
                Some(int) => {
                    let i = self.b.use_var(int);
                    self.box_int(i)
                }
                None => self.b.use_var(s.value),
            };
            let at = match known {
                Some(_) => cell,
                None => {
                    let base = match scratch {
                        Some(base) => base,
                        None => {
                            let slot = *self.sunk_scratch.get_or_insert_with(|| {
                                let size = (CELL_VALUE_OFFSET + 8) as u32;
                                self.b.create_sized_stack_slot(StackSlotData::new(StackSlotKind::ExplicitSlot, size, 3))
                            });
                            *scratch.insert(self.b.ins().stack_addr(I64, slot, 0))
                        }
                    };
                    self.b.ins().select(dirty, cell, base)
                }
            };
            self.b.ins().store(flags, v, at, CELL_VALUE_OFFSET as i32);
        }
        let no = self.b.ins().iconst(types::I8, 0);
        self.b.def_var(flag, no);
    }

    /// The address of speculative code's validation table (see [`Self::flush_sunk_writes`]).
    fn validation_table(&mut self) -> ir::Value {
        let (gv, _) = match self.table_name {
            Some(name) => name,
            None => {
                let name = self.declare_vm_const(0);
                *self.table_name.insert(name)
            }
        };
        self.b.ins().symbol_value(I64, gv)
    }

    /// Add the sunk writes' flag `dirty` (an `i8`) to the code's own write count.
    pub(super) fn count_own_writes(&mut self, dirty: ir::Value) {
        let Some((_, own)) = self.writes_var else { return };
        let n = self.b.use_var(own);
        let n = match (self.known_iconst(n), self.known_iconst(dirty)) {
            (Some(a), Some(b)) => self.iconst(a.wrapping_add(b) as u64),
            _ => {
                let d = self.b.ins().uextend(I64, dirty);
                self.b.ins().iadd(n, d)
            }
        };
        self.b.def_var(own, n);
    }

    /// LOAD_STORE (and the value of an `EXEC_STORE`): the cell's value variable.
    pub(super) fn spec_read_store(&mut self, k: usize) -> Option<VValue> {
        let i = self.hoisted(k)?;
        let seen = self.store_value_at_compile_time(self.path(k));
        let c = &mut self.spec.as_mut()?.cells[i];
        // A path holding `Nil`, `Void`, `True`, `False`, a Block or a builtin that this code
        // does not write is a constant (guarded in the pre-header like an executed path): a
        // `choose` on it is known, so `>block Nil >choose` ends a round with one branch, and a
        // `choose` between the stdlib's `True` and a comparison keeps its truth (`or`).
        let constant = |v: Value| {
            v == Value::NIL
                || v == Value::VOID
                || v == Value::TRUE
                || v == Value::FALSE
                || v.as_block_obj().is_some()
                || v.as_builtin_obj().is_some()
        };
        if !c.written {
            if let Some(v) = seen.filter(|&v| constant(v) && c.guard.is_none_or(|g| g == v.to_bits())) {
                c.guard = Some(v.to_bits());
            }
        }
        if let Some(g) = c.guard {
            let v = self.value_const(g);
            return Some(VValue::new(v, Some(g)));
        }
        c.value_used = true;
        let (value, int) = (c.value, c.int);
        // An Int cell carries only its integer across rounds; the boxed form is rebuilt where
        // it is used (and is dead code where it is not).
        if let Some(iv) = int {
            let i = self.b.use_var(iv);
            let mut e = VValue::new(self.box_int(i), None);
            e.int = Some(i);
            return Some(e);
        }
        Some(VValue::new(self.b.use_var(value), None))
    }

    /// A guarded `EXEC_STORE` of path `k` expecting `bits`: checked in the pre-header only.
    /// False when the translation gave up (a path the code writes cannot be assumed).
    pub(super) fn spec_guard(&mut self, k: usize, bits: u64) -> bool {
        let Some(i) = self.hoisted(k) else { return false };
        let Some(spec) = self.spec.as_mut() else { return false };
        let c = &mut spec.cells[i];
        if c.written || c.guard.is_some_and(|g| g != bits) {
            self.give_up("a guarded Store path written in speculative code");
            return false;
        }
        c.guard = Some(bits);
        true
    }

    /// SET_STORE of the virtual entry `e` into a hoisted cell: a plain store and the variables
    /// redefined. A value that would break the cell's assumption (not a small Int where one is
    /// assumed, a CellRef, which would write through) is a deopt exit with `e` back on the AL.
    pub(super) fn spec_set_store(&mut self, k: usize, e: VValue) {
        if self.writes_var.is_none() {
            // `writes_no_store_cell` missed this write: its count would be lost.
            return self.give_up("a Store write in code found to write none");
        }
        let Some(i) = self.hoisted(k) else { return };
        let Some(spec) = self.spec.as_mut() else { return };
        let c = &mut spec.cells[i];
        if c.guard.is_some() {
            return self.give_up("a guarded Store path written in speculative code");
        }
        c.written = true;
        // A sunk write stores at a flush, through the validation table's cell.
        c.cell_used |= c.dirty.is_none();
        let (cell, value, int_var, holds_ref, dirty) = (c.cell, c.value, c.int, c.holds_ref, c.dirty);
        let int = match (int_var, e.int) {
            // A CellRef replacing the cell's CellRef: no write-through, and the epoch stays
            // unless a lookup walked through the cell (then the executor does the write).
            (None, _) if holds_ref => {
                // A value known to be no CellRef always writes through: this path always
                // leaves (it is a cold one, such as one arm of a `choose`, or the code would
                // not have been compiled holding a CellRef here).
                let is_ref = if e.known_not_cell_ref() { self.b.ins().iconst(types::I8, 0) } else { self.is_cell_ref(e.val) };
                let cell_v = self.b.use_var(cell);
                let bits = self.b.ins().uload8(I32, MemFlagsData::trusted(), cell_v, CELL_FLAGS_OFFSET as i32);
                let through = self.b.ins().band_imm_s(bits, i64::from(CELL_WALKED_THROUGH));
                let not_through = self.b.ins().icmp_imm_s(IntCC::Equal, through, 0);
                let ok = self.b.ins().band(is_ref, not_through);
                self.deopt_unless(ok, &[VEntry::Value(e)], DeoptReason::RefCellWrite);
                None
            }
            (Some(_), Some(r)) => Some(r),
            (Some(_), None) => {
                let ok = self.is_small_int(e.val);
                self.deopt_unless(ok, &[VEntry::Value(e)], DeoptReason::NotSmallInt);
                Some(self.unbox_int(e.val))
            }
            (None, _) => {
                if e.int.is_none() && e.konst.is_none() {
                    let is_ref = self.is_cell_ref(e.val);
                    let ok = self.b.ins().icmp_imm_s(IntCC::Equal, is_ref, 0);
                    self.deopt_unless(ok, &[VEntry::Value(e)], DeoptReason::CellRefStored);
                }
                None
            }
        };
        match dirty {
            // The store and its count wait for the next flush (see "Sunk writes").
            Some(dirty) => {
                let yes = self.b.ins().iconst(types::I8, 1);
                self.b.def_var(dirty, yes);
            }
            None => {
                let cell_v = self.b.use_var(cell);
                self.b.ins().store(MemFlagsData::trusted(), e.val, cell_v, CELL_VALUE_OFFSET as i32);
                // Count the write in a register; the graph's counter gets it where anything
                // else could look (`sync_vm_state`).
                let own = self.spec.as_ref().expect("speculating").own_writes;
                let n = self.b.use_var(own);
                // Kept a constant where it is one (0 after a sync point), so that a sync point
                // in the same straight line knows the count at compile time (`sync_vm_state`).
                let n = match self.known_iconst(n) {
                    Some(c) => self.iconst(c.wrapping_add(1) as u64),
                    None => self.b.ins().iadd_imm_s(n, 1),
                };
                self.b.def_var(own, n);
            }
        }
        match (int_var, int) {
            (Some(v), Some(r)) => self.b.def_var(v, r),
            _ => self.b.def_var(value, e.val),
        }
    }

    /// Continue only when `ok` (an `i8`); otherwise a deoptimisation exit for `reason` at this
    /// instruction with `taken` (the operands the instruction had popped) back on top of the
    /// AL.
    pub(super) fn deopt_unless(&mut self, ok: ir::Value, taken: &[VEntry], reason: DeoptReason) {
        let pc = self.lvl().pc;
        self.deopt_unless_at(ok, taken, pc, reason);
    }

    /// [`Self::deopt_unless`], resuming the innermost level at instruction `pc` (the next one,
    /// after a call whose results the exit leaves on the AL).
    pub(super) fn deopt_unless_at(&mut self, ok: ir::Value, taken: &[VEntry], pc: usize, reason: DeoptReason) {
        let cont = self.b.create_block();
        let deopt = self.b.create_block();
        self.b.set_cold_block(deopt);
        self.b.ins().brif(ok, cont, &[], deopt, &[]);
        self.seal_blocks(&[cont, deopt]);
        self.b.switch_to_block(deopt);
        for e in taken {
            self.vs.push(*e);
        }
        self.emit_deopt_at(pc, reason);
        for _ in taken {
            self.vs.pop();
        }
        self.b.switch_to_block(cont);
    }

    /// The small Int integer of `e`, tag-tested (deopt exit with `taken` back on the AL when
    /// it is not one) unless known.
    fn spec_int(&mut self, e: &VValue, taken: &[VEntry]) -> ir::Value {
        if let Some(r) = e.int {
            return r;
        }
        if let Some(i) = e.konst_small_int() {
            return self.iconst(i as u64);
        }
        if e.konst.is_some() {
            // A constant of another kind (a BigInt, a Str) would fail the test on every run:
            // the generic code handles it without leaving.
            self.give_up("a constant operand that is not a small Int");
        }
        let ok = self.is_small_int(e.val);
        self.deopt_unless(ok, taken, DeoptReason::NotSmallInt);
        let i = self.unbox_int(e.val);
        self.known_small_int(e.val, i);
        i
    }

    /// From here on (the code the test just made dominates what follows in translation
    /// order: inlined branches start from the state before them, and their merge keeps only
    /// what both know), a virtual Register name holding `val` is known to hold the small Int
    /// `i`: its next uses need no tag test (fib tests `_.n` once, not at each of its three
    /// uses).
    fn known_small_int(&mut self, val: ir::Value, i: ir::Value) {
        for l in &mut self.levels {
            if let RegMode::Virtual(names) = &mut l.reg {
                for n in names.iter_mut() {
                    if let Some(info) = n.info.as_mut().filter(|info| info.val == val && info.int.is_none()) {
                        info.int = Some(i);
                    }
                }
            }
        }
    }

    /// The two operands of a binary builtin (popped) and their integers, each tag-tested
    /// unless known: `None` when the translation gave up.
    fn spec_int_operands(&mut self) -> Option<([VEntry; 2], [VValue; 2], ir::Value, ir::Value)> {
        let taken: [VEntry; 2] = self.vs.pop_n(2).try_into().expect("2 entries");
        let (Some(&a), Some(&b)) = (taken[0].value(), taken[1].value()) else {
            self.give_up("a virtual `_.` as an operand");
            return None;
        };
        let x = self.spec_int(&a, &taken);
        let y = self.spec_int(&b, &taken);
        Some((taken, [a, b], x, y))
    }

    /// `+ - * / %` on small Ints, with every other case a deopt exit (see the module docs).
    pub(super) fn gen_arith_spec(&mut self, op: ArithOp) {
        let Some((taken, [a, b], x, y)) = self.spec_int_operands() else { return };
        let divisor = b.konst_small_int();
        // A remainder by a known nonzero divisor is smaller than it, and a quotient by one
        // other than -1 is no larger than the dividend: both fit without a check.
        let divides = matches!(op, ArithOp::FloorDiv | ArithOp::Mod);
        let always_fits = divides && divisor.is_some_and(|d| d != 0 && d != -1);
        // Adding (or subtracting) a known Int can leave the range on one side only: one
        // compare instead of the sign-extension test.
        let mut step = match op {
            ArithOp::Add => b.konst_small_int().or_else(|| a.konst_small_int()),
            ArithOp::Sub => b.konst_small_int().map(|c| -c),
            _ => None,
        };
        let r = match op {
            ArithOp::Add => self.b.ins().iadd(x, y),
            ArithOp::Sub => self.b.ins().isub(x, y),
            // A small Int (below 2^47 in magnitude) times a known factor of at most 2^15 fits
            // an i64: the small-Int check below is the only one needed (collatz's `3 >*`).
            // A known small Int added right after (`3 >* 1 >+`) still fits an i64 (below
            // 2^62 + 2^47): both are one check of the sum, which leaves at the product with
            // its operands, and the executor makes both results again.
            ArithOp::Mul if a.konst_small_int().or(b.konst_small_int()).is_some_and(|c| c.unsigned_abs() <= 1 << 15) => {
                let product = self.b.ins().imul(x, y);
                match self.add_of_a_constant_next() {
                    Some(c) => {
                        self.out.fused_checks += 1;
                        step = None;
                        self.b.ins().iadd_imm_s(product, c)
                    }
                    None => product,
                }
            }
            ArithOp::Mul => {
                let (r, of) = self.b.ins().smul_overflow(x, y);
                let ok = self.b.ins().icmp_imm_s(IntCC::Equal, of, 0);
                self.deopt_unless(ok, &taken, DeoptReason::IntOverflow);
                r
            }
            ArithOp::FloorDiv | ArithOp::Mod => {
                if divisor.is_none_or(|d| d == 0) {
                    let ok = self.b.ins().icmp_imm_s(IntCC::NotEqual, y, 0);
                    self.deopt_unless(ok, &taken, DeoptReason::ZeroDivisor);
                }
                self.floor_div_mod(op, x, y, divisor)
            }
        };
        if !always_fits {
            let fits = match step {
                Some(c) if c >= 0 => self.b.ins().icmp_imm_s(IntCC::SignedLessThanOrEqual, r, SMALL_INT_MAX),
                Some(_) => self.b.ins().icmp_imm_s(IntCC::SignedGreaterThanOrEqual, r, SMALL_INT_MIN),
                None => self.fits_small(r),
            };
            self.deopt_unless(fits, &taken, DeoptReason::IntOverflow);
        }
        let mut e = VValue::new(self.box_int(r), None);
        e.int = Some(r);
        self.vpush_entry(VEntry::Value(e));
    }

    /// The small Int `c` when the next two instructions of this level are `c` (a constant)
    /// and `>+` (a Store path holding the `+` builtin, its site not made generic by type
    /// feedback): both then lowered with the instruction being translated, which covers them
    /// ([`Translator::lowered_ahead`]); the path's guard is taken as its own lowering takes
    /// it. `None`, changing nothing, otherwise.
    fn add_of_a_constant_next(&mut self) -> Option<i64> {
        let l = self.lvl();
        let (pc, code, consts) = (l.pc, l.code, l.consts);
        let [push, add] = code.instrs.get(pc + 1..pc + 3)? else { return None };
        if push.op != Opcode::Const || add.op != Opcode::ExecStore {
            return None;
        }
        let c = consts[push.operand as usize].as_small_int()?;
        let k = add.operand as usize;
        let plus = self.store_value_at_compile_time(&code.paths[k])?;
        // SAFETY: builtin objects are VM roots for the VM's whole life.
        let is_add = plus.as_builtin_obj().is_some_and(|p| unsafe { (*p.as_ptr()).id } == BuiltinId::Add);
        if !is_add || self.site_is_wide_at(pc + 2) || !self.spec_guard(k, plus.to_bits()) {
            return None;
        }
        self.record_assumption(k, plus.to_bits());
        self.lowered_ahead = 2;
        Some(c)
    }

    /// `<` on small Ints (anything else: a deopt exit); the result's truth is known.
    pub(super) fn gen_lt_spec(&mut self) {
        let Some((_, [a, b], x, y)) = self.spec_int_operands() else { return };
        let operand = |e: &VValue, v| e.konst_small_int().map_or(IntOperand::Ssa(v), IntOperand::Const);
        let rel = Rel {
            mask: Rel::LESS,
            x: operand(&a, x),
            y: operand(&b, y),
        };
        let e = self.rel_value(rel);
        self.vpush_entry(VEntry::Value(e));
    }

    /// A chained round's re-entry in speculative code: the poll countdown; when the host poll
    /// runs, the next round goes through the pre-header (the host may have changed the Store),
    /// or, when newer code was installed meanwhile, returns to the `chain` loop with this Block
    /// on top so that the loop runs the newer code. The execution count is not kept per round:
    /// it only decides tier-up, and this code is the last tier.
    ///
    /// When the round's poll region is still open (no helper or call since its test), the
    /// re-entry is one more entry of that region: its test already made sure the countdown
    /// cannot reach zero here, so it only counts down, and the round has one test and one
    /// branch less. The host's hook then runs where `jit_poll_ahead` declines an early poll
    /// (with a hook, at least every `MAX_EARLY_POLLS_IN_A_ROW + 1` intervals) and the code
    /// leaves for the executor, which polls at the exact entry. Code finished meanwhile is
    /// installed at that poll or when the loop ends: a round that opened a region and then
    /// called nothing inlined everything it runs, and this code is the last tier, so newer
    /// code can only be other Blocks' (or this Block's own after a deopt, which leaves).
    pub(super) fn emit_reenter_spec(&mut self) {
        if self.poll_region.is_some() {
            self.out.region_reentries += 1;
            self.emit_region_step();
            self.emit_restart_and_jump(self.body);
            return;
        }
        let pre = self.spec.as_ref().expect("speculating").pre;
        let revalidate = self.b.create_block();
        // A failed poll fails the block entry: the caller's error (see `emit_reenter`).
        self.emit_countdown_poll_then(
            Helper::Poll,
            |t, st| t.emit_return(st),
            |t, _| t.emit_after_host_poll(revalidate),
        );
        // The poll not due: the next round, the assumptions still checked.
        self.emit_restart_and_jump(self.body);
        self.b.switch_to_block(revalidate);
        self.emit_restart_and_jump(pre);
    }

    /// A fresh Register for the next round (a heap one: the helper), then `to`.
    fn emit_restart_and_jump(&mut self, to: ir::Block) {
        if has_register_instrs(self.levels[0].code) {
            self.helper_status(At::Main, Helper::RestartFrame, &[self.vm]);
        }
        self.b.ins().jump(to, &[]);
    }

    /// After the host poll of a chained round: newer code installed meanwhile takes the next
    /// round (this Block pushed back, return to `chain`); otherwise go to `revalidate`.
    fn emit_after_host_poll(&mut self, revalidate: ir::Block) {
        let flags = MemFlagsData::trusted();
        let flag_addr = self.vm_const(&*self.out.superseded as *const std::cell::Cell<u64> as u64);
        let superseded = self.b.ins().load(I64, flags, flag_addr, 0);
        let moved = self.b.create_block();
        self.b.set_cold_block(moved);
        self.b.set_cold_block(revalidate);
        self.b.ins().brif(superseded, moved, &[], revalidate, &[]);
        self.b.switch_to_block(moved);
        let two = self.iconst(2);
        self.b.ins().store(flags, two, flag_addr, 0);
        let me = self.vm_const(self.env.block.to_bits());
        self.emit_push(vec![me]);
        let ok = self.b.ins().iconst(I32, ffi::SOMA_OK as i64);
        self.emit_return(ok);
    }

    /// Fill the pre-header (after the body, before the exits are filled): resolve every
    /// hoisted cell, check the assumptions, define the variables, enter the body. Any failure
    /// is a deoptimisation exit at instruction 0 of level 0, nothing pending.
    ///
    /// **Validation cache.** A successful check (`helpers::jit_validate`) stores the
    /// structural epoch and the write counter the code read, with every cell and value, in a
    /// table of the code's own. At the next
    /// entry, the same epoch and count mean nothing was written and nothing moved since: the
    /// cells resolve the same and hold the same values, so every check would pass again, and
    /// the pre-header only loads the table. A recursive Block that writes nothing (fib) pays
    /// two loads and a compare per call for all its assumptions.
    pub(super) fn finish_preheader(&mut self) {
        let Some(spec) = self.spec.take() else { return };
        // A path below a cell whose CellRef the code replaces resolves through that CellRef:
        // its hoisted cell would go stale at the first write.
        let rerouted = spec.cells.iter().filter(|c| c.written && c.holds_ref).any(|r| {
            spec.cells.iter().any(|c| c.comps.len() > r.comps.len() && c.comps.starts_with(&r.comps))
        });
        if rerouted {
            return self.give_up("a Store path below a CellRef the code replaces");
        }
        self.b.switch_to_block(spec.pre);
        // Memory is current here (entry, or after the host poll): the pre-header's helpers
        // have no sunk writes to flush (and the cells are not resolved yet).
        let sunk = std::mem::take(&mut self.sunk);
        self.finish_preheader_checks(spec);
        self.sunk = sunk;
    }

    /// The pre-header's code (see [`Self::finish_preheader`]).
    fn finish_preheader_checks(&mut self, spec: Speculation) {
        let flags = MemFlagsData::trusted();
        self.reload_vm_state();
        if spec.chained_only {
            self.emit_chained_entry_check(&spec);
        }
        // Every failed check leaves through `fail` with the exit's detail plus one.
        let fail = self.b.create_block();
        let failed = self.b.append_block_param(fail, I64);
        self.b.set_cold_block(fail);
        // The virtual frames' depth checks, once for the deepest (see `frame_nesting`): when
        // some frame could be too deep, the executor runs the Block and raises the recursion
        // error where it belongs (if that frame's path runs at all).
        if let Some(too_deep) = self.frames_too_deep(&spec) {
            let go_on = self.b.create_block();
            let other = self.iconst(1);
            self.b.ins().brif(too_deep, fail, &[BlockArg::Value(other)], go_on, &[]);
            self.b.switch_to_block(go_on);
        }
        let n = spec.cells.len();
        let table: Box<[std::cell::Cell<u64>]> = (0..helpers::validation_table_words(n)).map(|_| std::cell::Cell::new(u64::MAX)).collect();
        let table_addr = table.as_ptr() as u64;
        self.out.validations.push(table);
        if let Some((_, k)) = self.table_name {
            self.set_vm_const(k, table_addr);
        }
        let tab = self.vm_const(table_addr);
        let (w0, e0) = self.define_counters_of(&spec);
        let seen_e = self.b.ins().load(I64, flags, tab, helpers::TABLE_EPOCH);
        let seen_w = self.b.ins().load(I64, flags, tab, helpers::TABLE_WRITES);
        let same_e = self.b.ins().icmp(IntCC::Equal, e0, seen_e);
        let same_w = self.b.ins().icmp(IntCC::Equal, w0, seen_w);
        let same = self.b.ins().band(same_e, same_w);
        let cached = self.b.create_block();
        let check = self.b.create_block();
        self.b.ins().brif(same, cached, &[], check, &[]);

        // Nothing changed since the last successful check: the table's cells and values (those
        // the body uses; the loads are not removed for the others, as the table is rewritten
        // between two runs of this block in a chained loop).
        self.b.switch_to_block(cached);
        self.define_from_table(&spec.cells, tab);
        self.enter_body(&spec);

        // A direct self-call's entry (`direct.rs`): the same, past the checks.
        self.finish_direct_entry(&spec, table_addr, fail);

        // What the helper checks per path, and what the inline re-checks read of it.
        let mut checks = Vec::with_capacity(n);
        for c in &spec.cells {
            checks.push(helpers::HoistedCheck::new(
                c.comps.clone(),
                c.path as *const Path,
                self.cache_ptr() as *const StoreCacheLine,
                c.guard,
                c.int.is_some(),
                c.written,
                // Only a written path's CellRef is assumed: a path the code only reads may
                // hold anything.
                c.holds_ref && c.written,
            ));
        }
        let checks = checks.into_boxed_slice();

        // The checks after calls that validated again (the table is theirs too).
        for site in &spec.reloads {
            self.b.switch_to_block(site.recheck);
            let tab = self.vm_const(table_addr);
            let checks_addr = self.vm_const(checks.as_ptr() as u64);
            let seen_e = self.b.ins().load(I64, flags, tab, helpers::TABLE_EPOCH);
            let counters = Counters { epoch: site.epoch, writes: site.writes, seen_epoch: seen_e };
            self.emit_recheck_values(&checks, tab, checks_addr, counters, site.reload, site.full);
            let cont = site.cont;
            // `recheck` dominates `reload` (directly, or through `full`): its `tab` serves.
            self.b.switch_to_block(site.reload);
            self.define_from_table(&spec.cells, tab);
            if let Some(counter) = self.env.revalidated {
                let addr = self.vm_const(counter as u64);
                let n = self.b.ins().load(I64, flags, addr, 0);
                let n = self.b.ins().iadd_imm_s(n, 1);
                self.b.ins().store(flags, n, addr, 0);
            }
            self.b.ins().jump(cont, &[]);
        }

        // Only values were written since (the same epoch): re-read them inline, and go to the
        // helper only when one changed in a way the helper must judge.
        self.b.switch_to_block(check);
        let full_check = self.b.create_block();
        self.b.set_cold_block(full_check);
        let checks_addr = self.vm_const(checks.as_ptr() as u64);
        let counters = Counters { epoch: e0, writes: w0, seen_epoch: seen_e };
        self.emit_recheck_values(&checks, tab, checks_addr, counters, cached, full_check);

        // Something moved since (or a value changed past what the inline re-check judges):
        // check everything again, in a helper (out of line, the full checks cost the compile
        // nothing per path). It fills the table, so the cached path above then defines the
        // variables.
        self.b.switch_to_block(full_check);
        for &(slot, what) in &spec.table_consts {
            let bits = match what {
                TableConst::Checks => checks.as_ptr() as u64,
                TableConst::Count => n as u64,
                TableConst::Table => table_addr,
            };
            match slot {
                TableSlot::Iconst(inst) => patch_iconst(self.b.func, inst, bits as i64),
                TableSlot::VmConst(k) => self.set_vm_const(k, bits),
            }
        }
        self.out.hoisted = checks;
        let count = self.iconst(n as u64);
        let r = self.helper(At::Main, Helper::Validate, &[self.vm, checks_addr, count, tab, e0, w0])
            .expect("a result");
        let passed = self.b.create_block();
        self.b.ins().brif(r, fail, &[BlockArg::Value(r)], passed, &[]);
        self.b.seal_block(passed);
        // Marking a guarded cell may have moved the epoch (`graph.rs`, "Guarded cells"): the
        // checks after calls compare with the counters as they are now.
        self.b.switch_to_block(passed);
        self.define_counters_of(&spec);
        self.b.ins().jump(cached, &[]);

        // An exit at instruction 0 of level 0, as the Block was entered, nothing pending; the
        // check's result less one is the site's detail (which small-Int check failed).
        self.b.switch_to_block(fail);
        self.emit_deopt_at_entry(&spec, DeoptReason::EntryCheck, Some(failed));
    }

    /// The pre-header's way into the body: a jump, or in a chained loop's code a branch on a
    /// placeholder that `induction.rs` turns into the guard of the loop's entry values (or
    /// into the jump), with an exit at instruction 0 of level 0 where the guard fails.
    fn enter_body(&mut self, spec: &Speculation) {
        let l = &self.levels[0];
        let bounded = continues_a_chain(l.code)
            && !self.direct.as_ref().is_some_and(|d| d.used)
            && !self.env.vm.block_obj(l.block).is_some_and(|b| self.env.site_is_wide(b.module, b.code, crate::feedback::RANGE_SITE));
        if !bounded {
            self.b.ins().jump(self.body, &[]);
            return;
        }
        let placeholder = self.b.ins().iconst(ir::types::I8, 1);
        let leave = self.b.create_block();
        self.b.set_cold_block(leave);
        let branch = self.b.ins().brif(placeholder, self.body, &[], leave, &[]);
        self.b.seal_block(leave);
        self.b.switch_to_block(leave);
        self.emit_deopt_at_entry(spec, DeoptReason::InductionRange, None);
        self.induction_guard = Some(crate::induction::EntryGuard { header: self.body, branch });
    }

    /// The pre-header's check that a `chain` loop runs this code (see
    /// [`Self::may_assume_chained`]); otherwise an exit at instruction 0 of level 0, as the
    /// Block was entered.
    fn emit_chained_entry_check(&mut self, spec: &Speculation) {
        let go_on = self.b.create_block();
        let leave = self.b.create_block();
        self.b.set_cold_block(leave);
        let chained = self.chained_flag();
        self.b.ins().brif(chained, go_on, &[], leave, &[]);
        self.b.switch_to_block(leave);
        self.emit_deopt_at_entry(spec, DeoptReason::NotChained, None);
        self.b.switch_to_block(go_on);
    }

    /// A deopt exit at instruction 0 of level 0, as the Block was entered, nothing pending:
    /// the site for `reason`, with `checked` (what `jit_validate` returned) less one as its
    /// detail when given.
    fn emit_deopt_at_entry(&mut self, spec: &Speculation, reason: DeoptReason, checked: Option<ir::Value>) {
        let reg = std::mem::replace(&mut self.levels[0].reg, spec.entry_reg.clone());
        let pc = std::mem::replace(&mut self.levels[0].pc, 0);
        let vs = std::mem::take(&mut self.vs);
        match checked {
            Some(checked) => {
                let site = self.site_with_detail(0, reason, checked);
                self.emit_deopt_site(site);
            }
            None => self.emit_deopt_at(0, reason),
        }
        self.vs = vs;
        self.levels[0].pc = pc;
        self.levels[0].reg = reg;
    }

    /// The validation table's re-check when only the write counter moved (`counters`: the
    /// graph's, just read, and the table's epoch): under the same epoch the table's cells are
    /// still what every path resolves to (cells change only with the epoch), all watched,
    /// none shared by a written path, so only the values can have changed, and not those of
    /// guarded paths (a write to a guarded cell moves the epoch: `graph.rs`, "Guarded
    /// cells"). A changed value passes when its check (`checks`, `HoistedCheck::recheck`) asks
    /// only for a small Int and it is one, or for nothing. Then the table takes the new
    /// values and the write count, and the code goes on at `ok`; anything else (a new epoch,
    /// a CellRef where a written path forbids one) goes to `full`, the helper, which decides
    /// and reports exactly as on any other entry.
    ///
    /// This is the entry of a loop whose Store cells its caller wrote (collatz's step, a dict
    /// loop calling the stdlib's speculative Blocks), and the check after every call of a
    /// Block that writes cells, where the helper call cost as much as a dozen rounds of the
    /// loop. A few unguarded paths are re-checked one after the other; more, in a loop over
    /// the table, which costs the compile the same few instructions however many there are.
    fn emit_recheck_values(
        &mut self,
        checks: &[helpers::HoistedCheck],
        tab: ir::Value,
        checks_addr: ir::Value,
        counters: Counters,
        ok: ir::Block,
        full: ir::Block,
    ) {
        let same_e = self.b.ins().icmp(IntCC::Equal, counters.epoch, counters.seen_epoch);
        let unguarded: Vec<(usize, helpers::Recheck)> =
            checks.iter().enumerate().filter(|(_, c)| c.guard.is_none()).map(|(i, c)| (i, c.recheck)).collect();
        let done = self.b.create_block();
        if unguarded.len() <= MAX_STRAIGHT_RECHECKS {
            let first = self.b.create_block();
            self.b.ins().brif(same_e, first, &[], full, &[]);
            self.b.switch_to_block(first);
            for (i, kind) in unguarded {
                self.emit_recheck_one(tab, i, kind, full);
            }
            self.b.ins().jump(done, &[]);
        } else {
            self.emit_recheck_loop(checks.len(), tab, checks_addr, same_e, done, full);
        }
        self.b.switch_to_block(done);
        let flags = MemFlagsData::trusted();
        self.b.ins().store(flags, counters.writes, tab, helpers::TABLE_WRITES);
        self.b.ins().jump(ok, &[]);
    }

    /// The re-check of path `i`'s value, which needs `kind`: into the table when it passes,
    /// else to `full`. Falls through to a new block.
    fn emit_recheck_one(&mut self, tab: ir::Value, i: usize, kind: helpers::Recheck, full: ir::Block) {
        let flags = MemFlagsData::trusted();
        let entry = helpers::TABLE_ENTRIES + helpers::TABLE_ENTRY_SIZE * i as i32;
        let value_at = entry + helpers::TABLE_ENTRY_VALUE;
        let cell = self.b.ins().load(I64, flags, tab, entry);
        let v = self.b.ins().load(I64, flags, cell, CELL_VALUE_OFFSET as i32);
        let passes = match kind {
            helpers::Recheck::Any => None,
            helpers::Recheck::SmallInt => Some(self.is_small_int(v)),
            helpers::Recheck::Full => {
                let old = self.b.ins().load(I64, flags, tab, value_at);
                Some(self.b.ins().icmp(IntCC::Equal, v, old))
            }
        };
        if let Some(passes) = passes {
            let next = self.b.create_block();
            self.b.ins().brif(passes, next, &[], full, &[]);
            self.b.seal_block(next);
            self.b.switch_to_block(next);
        }
        self.b.ins().store(flags, v, tab, value_at);
    }

    /// [`Self::emit_recheck_values`] as a loop over all `n` paths of the table (guarded ones
    /// compare equal), when `same_e`; on to `done`, or to `full`.
    fn emit_recheck_loop(&mut self, n: usize, tab: ir::Value, checks: ir::Value, same_e: ir::Value, done: ir::Block, full: ir::Block) {
        let flags = MemFlagsData::trusted();
        let head = self.b.create_block();
        let i = self.b.append_block_param(head, I64);
        let zero = self.iconst(0);
        self.b.ins().brif(same_e, head, &[BlockArg::Value(zero)], full, &[]);

        // head(i): past the last path, done; else compare path i's value with the table's.
        self.b.switch_to_block(head);
        let body = self.b.create_block();
        let past = self.b.ins().icmp_imm_s(IntCC::Equal, i, n as i64);
        self.b.ins().brif(past, done, &[], body, &[]);

        self.b.switch_to_block(body);
        let at = self.b.ins().imul_imm_s(i, i64::from(helpers::TABLE_ENTRY_SIZE));
        let entry = self.b.ins().iadd(tab, at);
        let value_at = helpers::TABLE_ENTRIES + helpers::TABLE_ENTRY_VALUE;
        let cell = self.b.ins().load(I64, flags, entry, helpers::TABLE_ENTRIES);
        let old = self.b.ins().load(I64, flags, entry, value_at);
        let v = self.b.ins().load(I64, flags, cell, CELL_VALUE_OFFSET as i32);
        let next = self.b.ins().iadd_imm_s(i, 1);
        let same = self.b.ins().icmp(IntCC::Equal, v, old);
        let changed = self.b.create_block();
        self.b.ins().brif(same, head, &[BlockArg::Value(next)], changed, &[]);

        // A changed value: what may its path hold?
        self.b.switch_to_block(changed);
        let at = self.b.ins().imul_imm_s(i, helpers::HOISTED_CHECK_SIZE as i64);
        let check = self.b.ins().iadd(checks, at);
        let kind = self.b.ins().uload8(I32, flags, check, helpers::RECHECK_OFFSET as i32);
        let any = self.b.ins().icmp_imm_s(IntCC::Equal, kind, helpers::Recheck::Any as i64);
        let wants_int = self.b.ins().icmp_imm_s(IntCC::Equal, kind, helpers::Recheck::SmallInt as i64);
        let int = self.is_small_int(v);
        let int_ok = self.b.ins().band(wants_int, int);
        let passes = self.b.ins().bor(any, int_ok);
        let take = self.b.create_block();
        self.b.ins().brif(passes, take, &[], full, &[]);

        self.b.switch_to_block(take);
        self.b.ins().store(flags, v, entry, value_at);
        self.b.ins().jump(head, &[BlockArg::Value(next)]);
    }

    /// Whether the deepest virtual frame (see `frame_nesting`) would pass the depth limit (an
    /// `i8`), when the code has virtual frames.
    pub(super) fn frames_too_deep(&mut self, spec: &Speculation) -> Option<ir::Value> {
        let nesting = spec.frame_nesting?;
        let depth = self.load_vm_field(VmField::Depth);
        let max = self.load_vm_field(VmField::MaxDepth);
        let deepest = self.b.ins().iadd_imm_s(depth, nesting as i64);
        Some(self.b.ins().icmp(IntCC::UnsignedGreaterThanOrEqual, deepest, max))
    }

    /// Define the counters the checks after calls compare with from the graph's (the
    /// code's own writes not yet added: none); returns (writes, epoch).
    pub(super) fn define_counters_of(&mut self, spec: &Speculation) -> (ir::Value, ir::Value) {
        let flags = MemFlagsData::trusted();
        let wa = self.vm_const(self.env.writes_ptr as u64);
        let ea = self.vm_const(self.env.epoch_ptr as u64);
        let w0 = self.b.ins().load(I64, flags, wa, 0);
        let e0 = self.b.ins().load(I64, flags, ea, 0);
        self.b.def_var(spec.writes, w0);
        let zero = self.iconst(0);
        self.b.def_var(spec.own_writes, zero);
        self.b.def_var(spec.epoch, e0);
        (w0, e0)
    }

    /// Define the variables the body uses from the validation table at `tab`.
    pub(super) fn define_from_table(&mut self, cells: &[Hoisted], tab: ir::Value) {
        let flags = MemFlagsData::trusted();
        // The variables are the cells' values: nothing to store.
        for dirty in cells.iter().filter_map(|c| c.dirty) {
            let no = self.b.ins().iconst(types::I8, 0);
            self.b.def_var(dirty, no);
        }
        for (i, c) in cells.iter().enumerate() {
            let entry = helpers::TABLE_ENTRIES + helpers::TABLE_ENTRY_SIZE * i as i32;
            if c.cell_used {
                let cell = self.b.ins().load(I64, flags, tab, entry);
                self.b.def_var(c.cell, cell);
            }
            if c.value_used {
                let v = self.b.ins().load(I64, flags, tab, entry + helpers::TABLE_ENTRY_VALUE);
                self.define_value(c, v);
            }
        }
    }

    /// Define a hoisted cell's value variable (or its integer) from its value.
    fn define_value(&mut self, c: &Hoisted, v: ir::Value) {
        match c.int {
            Some(int) => {
                let i = self.unbox_int(v);
                self.b.def_var(int, i);
            }
            None => self.b.def_var(c.value, v),
        }
    }
}
