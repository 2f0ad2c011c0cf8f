//! JIT-side C-ABI helpers: the slow paths compiled code calls that the runtime's `soma_rt_*`
//! surface does not provide in the form the translator wants (value-form reads that do not
//! touch the AL, epoch-cached Store writes, a chain step, the deoptimisation exit).
//!
//! Every helper follows the contract at the top of `soma_runtime::ffi`: `vm` is a live boxed
//! VM used by this thread only, `path` points at a path of a module loaded in it, value bits
//! are live values of this VM, and helpers never unwind (a panic becomes `SOMA_INTERNAL` with
//! a RuntimeError on the VM). Errors are not positioned; compiled code calls
//! `jit_error_at` with the failing instruction's position.

use crate::deopt::DeoptReason;
use soma_runtime::decode::Path;
use soma_runtime::error::msg;
use soma_runtime::ffi::{SOMA_INTERNAL, SOMA_OK};
use soma_runtime::cell::{CELL_FLAGS_OFFSET, CELL_GUARDED, CELL_WALKED_THROUGH};
use soma_runtime::heap::CellObj;
use soma_runtime::store_cache::StoreCacheLine;
use soma_runtime::{Value, Vm};
use soma_runtime::abi::{catch_panic, guard, value_from_abi as val};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::OnceLock;

/// A deoptimisation exit, as the compiler learns of it: the compiled Block's frame and the
/// instruction it resumes at, the innermost level's Block and instruction (the site), whether
/// that was inside an inlined body, and why (with the site's detail, `deopt::encode_site`).
#[derive(Clone, Copy, Debug)]
pub struct DeoptEvent {
    pub block: Value,
    pub pc: usize,
    pub site: (Value, usize),
    pub inlined: bool,
    pub reason: DeoptReason,
    pub detail: usize,
}

/// What compiled code reports to the compiler that made it. The compiler's per-VM state is
/// `compiler.rs`'s, which depends on this module; so that this one does not depend on it in
/// turn, the compiler installs these functions ([`set_compiler_hooks`], from
/// `compiler::Jit::new`, before it compiles anything). They are plain functions of the VM,
/// the same for every VM of the process.
#[derive(Clone, Copy)]
pub struct CompilerHooks {
    /// Baseline code of a Block reached the optimizing tier's threshold.
    pub note_hot: fn(&mut Vm, Value),
    /// A deoptimisation exit was taken.
    pub note_deopt: fn(&mut Vm, DeoptEvent),
    /// A poll region's test took the due poll early (`jit_poll_ahead`).
    pub note_early_poll: fn(&mut Vm),
}

static COMPILER_HOOKS: OnceLock<CompilerHooks> = OnceLock::new();

/// Install the compiler's hooks (the first call wins: they are the same functions each time).
pub fn set_compiler_hooks(hooks: CompilerHooks) {
    let _ = COMPILER_HOOKS.set(hooks);
}

/// Push `n` values (bottom first) from `values` onto the AL: the virtual stack's flush.
/// Never collects.
///
/// # Safety
/// Helper contract; `values` is readable for `n` u64s of live values.
pub unsafe extern "C" fn jit_push_n(vm: *mut Vm, values: *const u64, n: usize) -> i32 {
    // SAFETY: helper contract.
    unsafe {
        guard(vm, |vm| {
            for i in 0..n {
                vm.push(val(*values.add(i)));
            }
            Ok(())
        })
    }
}

/// `_.a` in value form: write the Register cell's value to `out` without touching the AL.
/// Never collects.
///
/// # Safety
/// Helper contract; `out` valid for one write.
pub unsafe extern "C" fn jit_read_reg(vm: *mut Vm, path: *const Path, out: *mut u64) -> i32 {
    // SAFETY: helper contract.
    unsafe {
        guard(vm, |vm| {
            let v = vm.read_reg(&*path)?;
            out.write(v.to_bits());
            Ok(())
        })
    }
}

/// `_.x.rest` of a virtual name `_.x` holding `v`, in value form (`Vm::read_below`). Never
/// collects.
///
/// # Safety
/// Helper contract; `out` valid for one write.
pub unsafe extern "C" fn jit_read_below(vm: *mut Vm, v: u64, path: *const Path, out: *mut u64) -> i32 {
    // SAFETY: helper contract.
    unsafe {
        guard(vm, |vm| {
            let r = vm.read_below(val(v), &*path)?;
            out.write(r.to_bits());
            Ok(())
        })
    }
}

/// The cell of child `sym` of the cell the CellRef `v` refers to; 0 when `v` is not a
/// CellRef or that cell has no such child (the caller then takes `jit_read_below`, which
/// reports the error). A leaf helper (`helper_table.rs`): it only reads the graph, cannot
/// fail and has no panicking path.
///
/// # Safety
/// `v` is a live value of the calling VM.
pub unsafe extern "C" fn jit_child_cell(v: u64, sym: u32) -> u64 {
    // SAFETY: the caller passes a live value (a Register name's value, rooted in its slot).
    let v = unsafe { Value::from_bits(v) };
    v.as_cell()
        .and_then(|c| c.child_sym(soma_runtime::sym::Sym(sym)))
        .map_or(0, |c| c.as_raw().as_ptr() as u64)
}

/// No field: [`jit_new_record`] makes the record cell only (`_.n.` first).
pub const NO_FIELD: u32 = u32::MAX;

/// What [`jit_write_field`] returns when its body panicked (the error is on the VM); its
/// other results are `FieldWrite`'s.
pub const FIELD_WRITE_FAILED: u32 = 3;

/// The cell of a record name (`Vm::new_record`): a CellRef to a new cell, with child `sym`
/// holding `v` unless `sym` is [`NO_FIELD`]. 0 when the body panicked (the error is on the
/// VM). Never collects, touches no VM field compiled code keeps in registers: a leaf.
///
/// # Safety
/// `vm` is the calling VM; `v` is a live value of it.
pub unsafe extern "C" fn jit_new_record(vm: *mut Vm, sym: u32, v: u64) -> u64 {
    // SAFETY: helper contract: a live VM, exclusively ours for the call.
    let vmr = unsafe { &mut *vm };
    catch_panic(vmr, 0, |vm| {
        // SAFETY: the caller passes a live value.
        let field = (sym != NO_FIELD).then(|| (soma_runtime::sym::Sym(sym), unsafe { val(v) }));
        vm.new_record(field).to_bits()
    })
}

/// A fresh record's first `n` field writes at once (`Vm::new_record_fields`): a CellRef to a
/// new cell whose children are `fields[2i]` (a symbol) holding `fields[2i + 1]` (a value),
/// `i < n`, in that order. 0 when the body panicked (the error is on the VM). Never
/// collects; a leaf as [`jit_new_record`] is.
///
/// # Safety
/// `vm` is the calling VM; `fields` points to `2 * n` words, the values live values of it;
/// `n <= soma_runtime::ops::MAX_RECORD_FIELDS`, the symbols distinct.
pub unsafe extern "C" fn jit_new_record_fields(vm: *mut Vm, fields: *const u64, n: usize) -> u64 {
    // SAFETY: helper contract: a live VM, exclusively ours for the call.
    let vmr = unsafe { &mut *vm };
    catch_panic(vmr, 0, |vm| {
        // SAFETY: the caller passes `2 * n` readable words.
        let words = unsafe { std::slice::from_raw_parts(fields, 2 * n) };
        let mut pairs = [(soma_runtime::sym::Sym(0), Value::VOID); soma_runtime::ops::MAX_RECORD_FIELDS];
        for (pair, w) in pairs.iter_mut().zip(words.chunks_exact(2)) {
            // SAFETY: the caller passes live values.
            *pair = (soma_runtime::sym::Sym(w[0] as u32), unsafe { val(w[1]) });
        }
        vm.new_record_fields(&pairs[..n]).to_bits()
    })
}

/// `!_.n.sym` of `v` into the record name whose cell `record` refers to
/// (`Vm::write_record_field`): 0 written, 1 not written (it would go through a CellRef: the
/// executor's to do), 2 written with the graph's counters moved, [`FIELD_WRITE_FAILED`]
/// when the body panicked. Never collects; a leaf as [`jit_new_record`] is.
///
/// # Safety
/// `vm` is the calling VM; `record` is a CellRef made by [`jit_new_record`] and `v` a live
/// value, both of it.
pub unsafe extern "C" fn jit_write_field(vm: *mut Vm, record: u64, sym: u32, v: u64) -> u32 {
    // SAFETY: helper contract: a live VM, exclusively ours for the call.
    let vmr = unsafe { &mut *vm };
    catch_panic(vmr, FIELD_WRITE_FAILED, |vm| {
        // SAFETY: the caller passes live values.
        let (record, v) = unsafe { (val(record), val(v)) };
        let Some(cell) = record.as_cell() else {
            panic!("a record name's slot holds a CellRef");
        };
        vm.write_record_field(cell, soma_runtime::sym::Sym(sym), v) as u32
    })
}

/// `a.b` in value form: write the Store cell's value to `out` without touching the AL
/// (`Undefined Store path` when never created). Never collects. Used by run-once program
/// code, where an inline cache would only cost compile time.
///
/// # Safety
/// Helper contract; `out` valid for one write.
pub unsafe extern "C" fn jit_read_store(vm: *mut Vm, path: *const Path, out: *mut u64) -> i32 {
    // SAFETY: helper contract.
    unsafe {
        guard(vm, |vm| {
            let v = vm.read_store(&*path)?;
            out.write(v.to_bits());
            Ok(())
        })
    }
}

/// What a speculative pre-header checks of one hoisted Store path (`translate/speculate.rs`).
#[derive(Debug)]
pub struct HoistedCheck {
    /// The path's components (the type feedback widens it by name; dumps print it).
    pub comps: Vec<String>,
    pub path: *const Path,
    /// The path's own cache line (the cell it resolved to, under which epoch): a check after
    /// a write that moved nothing resolves it with a compare, not a walk.
    pub cache: *const StoreCacheLine,
    /// The builtin, Block or constant the path must hold, if any.
    pub guard: Option<u64>,
    /// The path must hold a small Int.
    pub int: bool,
    /// The code writes the path: it must hold no CellRef (unless `int` or `holds_ref`) and
    /// share its cell with no other path.
    pub written: bool,
    /// The path must hold a CellRef in a cell no lookup walks through (the code replaces the
    /// CellRef with plain stores).
    pub holds_ref: bool,
    /// What compiled code's inline re-check of the values (`translate/speculate.rs`,
    /// `emit_recheck_values`) may accept of a changed value of this path without this
    /// helper; it reads the byte at [`RECHECK_OFFSET`] of each check.
    pub recheck: Recheck,
}

/// What a changed value of a hoisted path needs (see [`HoistedCheck::recheck`]).
#[repr(u8)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recheck {
    /// The full check (`jit_validate`): a guard, a CellRef kept, or a written path that may
    /// hold no CellRef.
    Full = 0,
    /// Any small Int passes.
    SmallInt = 1,
    /// Anything passes: the code assumes nothing of the path's value.
    Any = 2,
}

/// The validation table of speculative code (`translate/speculate.rs`), which `jit_validate`
/// fills and compiled code reads and re-checks: 8-byte words, the epoch it was filled under,
/// the write count, then a (cell, value) pair per hoisted path. Byte offsets for compiled code.
pub const TABLE_EPOCH: i32 = 0;
pub const TABLE_WRITES: i32 = 8;
/// The first pair, the pairs' stride, and a pair's value (its cell comes first).
pub const TABLE_ENTRIES: i32 = 16;
pub const TABLE_ENTRY_SIZE: i32 = 16;
pub const TABLE_ENTRY_VALUE: i32 = 8;

/// The words of the validation table of `n` hoisted paths.
pub const fn validation_table_words(n: usize) -> usize {
    (TABLE_ENTRIES + TABLE_ENTRY_SIZE * n as i32) as usize / 8
}

/// Byte offset of [`HoistedCheck::recheck`], and the checks' stride, for compiled code.
pub const RECHECK_OFFSET: usize = std::mem::offset_of!(HoistedCheck, recheck);
pub const HOISTED_CHECK_SIZE: usize = std::mem::size_of::<HoistedCheck>();

impl HoistedCheck {
    /// A check; `recheck` follows from what is checked (see [`check_hoisted`]).
    pub fn new(
        comps: Vec<String>,
        path: *const Path,
        cache: *const StoreCacheLine,
        guard: Option<u64>,
        int: bool,
        written: bool,
        holds_ref: bool,
    ) -> HoistedCheck {
        let recheck = if guard.is_some() || holds_ref {
            Recheck::Full
        } else if int {
            Recheck::SmallInt
        } else if written {
            Recheck::Full
        } else {
            Recheck::Any
        };
        HoistedCheck { comps, path, cache, guard, int, written, holds_ref, recheck }
    }

    /// What is checked, for dumps: `c.n: resolves, a small Int, written (no CellRef, no
    /// alias)`.
    pub fn describe(&self) -> String {
        let mut what = vec!["resolves"];
        if let Some(bits) = self.guard {
            // SAFETY: a guard's bits are a live builtin or Block the code was compiled against
            // (a module constant or a Store value the compiler roots while it translates), or
            // an immediate.
            let v = unsafe { val(bits) };
            what.push(if v.as_block_obj().is_some() {
                "the same Block"
            } else if v.as_builtin_obj().is_some() {
                "the same builtin"
            } else {
                "the same value"
            });
        }
        if self.int {
            what.push("a small Int");
        }
        if self.holds_ref {
            what.push("a CellRef (not walked through)");
        }
        if self.written {
            what.push(if self.holds_ref { "written (no alias)" } else { "written (no CellRef, no alias)" });
        }
        format!("{}: {}", self.comps.join("."), what.join(", "))
    }
}

/// The entry checks of speculative code whose validation cache is out of date: resolve every
/// hoisted path of `checks` and check what the code assumes of it. When all hold, fill the
/// validation table (`[epoch, writes, (cell, value) per path]`, with the `epoch` and `writes`
/// the code read before the call) and return 0. Otherwise return the exit's site detail plus
/// one: `2 + i` when the small-Int or CellRef check of path `i` failed (the type feedback
/// widens that path), 1 for any other failure. Never collects, never writes the graph beyond
/// the walk marks a lookup sets (which keep the cached cells under the epoch protocol) and the
/// watched marks (which make writes to the cells count).
///
/// When the table was last filled under `epoch` (only values were written since: the code's
/// own, or a callee's), its cells are still what every path resolves to, all of them watched,
/// and no two written paths share one (cells change only with the epoch): only the values are
/// read and checked again. That is the common case after a call of a Block that writes cells,
/// and on entry to a loop whose cells another loop wrote.
///
/// # Safety
/// Helper contract; `checks` (with their cache lines) and `table` are the running code's (the
/// table has room for [`validation_table_words`]`(n)` words); every path belongs to a loaded
/// module.
pub unsafe extern "C" fn jit_validate(
    vm: *mut Vm,
    checks: *const HoistedCheck,
    n: u64,
    table: *mut u64,
    epoch: u64,
    writes: u64,
) -> u64 {
    // SAFETY: helper contract.
    let (vm, checks) = unsafe { (&mut *vm, std::slice::from_raw_parts(checks, n as usize)) };
    // The table is filled as the checks go (no allocation: this runs on every entry after a
    // write, and after every call of a Block that writes cells). Until all of them passed, its
    // epoch word holds a value no epoch has, so that no entry takes a half-filled table for
    // a validated one.
    // SAFETY: the table has room for its words (helper contract).
    let table = unsafe { std::slice::from_raw_parts_mut(table, validation_table_words(n as usize)) };
    let same_cells = table[0] == epoch;
    table[0] = u64::MAX;
    catch_panic(vm, 1, |vm| {
        let (head, entries) = table.split_at_mut(2);
        for (i, (c, entry)) in checks.iter().zip(entries.chunks_exact_mut(2)).enumerate() {
            let cell = if same_cells {
                entry[0] as *mut CellObj
            } else {
                // SAFETY: the cache line is the running code's (alive as long as it is); the
                // path belongs to a loaded module (helper contract).
                let (line, path) = unsafe { (&*c.cache, &*c.path) };
                let Some(cell) = line.resolve(vm.graph(), path) else { return 1 };
                // From now on a write to this cell moves the write counter this code compares
                // after its calls (`graph.rs`, "Write counter"), and a write to a guarded one
                // the epoch ("Guarded cells"): the inline re-checks skip guarded paths.
                if c.guard.is_some() {
                    vm.graph().guard_cell(cell);
                }
                cell.set_watched();
                cell.as_raw().as_ptr()
            };
            // SAFETY: a cell resolved under the current epoch is alive (the epoch moves
            // whenever a walked cell is unlinked), whether resolved just now or when the table
            // was filled under this same epoch.
            let (v, flags) = unsafe { ((*cell).value, *(cell as *const u8).add(CELL_FLAGS_OFFSET)) };
            if let Some(failed) = check_hoisted(c, i, v, flags) {
                return failed;
            }
            entry[0] = cell as u64;
            entry[1] = v.to_bits();
        }
        if !same_cells && shares_a_written_cell(checks, entries) {
            return 1;
        }
        head[1] = writes;
        head[0] = epoch;
        0
    })
}

/// What `jit_validate` checks of path `i`'s value `v`: `None` when it holds, else the exit's
/// detail plus one (see there).
#[inline(always)]
fn check_hoisted(c: &HoistedCheck, i: usize, v: Value, flags: u8) -> Option<u64> {
    if c.guard.is_some_and(|g| g != v.to_bits()) {
        return Some(1);
    }
    // The code's inline stores into a written path's cell do not move the epoch, which
    // another code guarding the cell relies on (`graph.rs`, "Guarded cells").
    if c.written && flags & CELL_GUARDED != 0 {
        return Some(1);
    }
    let walked_through = flags & CELL_WALKED_THROUGH != 0;
    if c.int && v.as_small_int().is_none() {
        return Some(2 + i as u64);
    }
    if c.holds_ref && (!v.is_cell_ref() || walked_through) {
        return Some(2 + i as u64);
    }
    if c.written && !c.int && !c.holds_ref && v.is_cell_ref() {
        return Some(1);
    }
    None
}

/// Whether a path the code writes resolved to the cell of another of its paths (in the
/// validation table's `(cell, value)` entries being filled): its inline stores would not be
/// seen through the other's variable.
fn shares_a_written_cell(checks: &[HoistedCheck], entries: &[u64]) -> bool {
    let cell_of = |i: usize| entries[2 * i];
    checks
        .iter()
        .enumerate()
        .filter(|(_, c)| c.written)
        .any(|(i, _)| (0..checks.len()).any(|j| j != i && cell_of(j) == cell_of(i)))
}

/// Resolve a Store path for an inline cache: on success fill `cache` (cell + current epoch)
/// and return the cell; when the path was never created, leave the cache alone, record
/// `Undefined Store path: 'P'` and return null. Never collects.
///
/// # Safety
/// Helper contract; `cache` is a cache line owned by the JIT of this VM.
pub unsafe extern "C" fn jit_resolve_store(vm: *mut Vm, path: *const Path, cache: *const StoreCacheLine) -> *mut CellObj {
    // SAFETY: helper contract.
    let vm = unsafe { &mut *vm };
    catch_panic(vm, std::ptr::null_mut(), |vm| {
        // SAFETY: helper contract; the cache line is JIT-owned and outlives the running code.
        let (path, cache) = unsafe { (&*path, &*cache) };
        match cache.refill(vm.graph(), path) {
            Some(cell) => cell.as_raw().as_ptr(),
            None => {
                vm.set_error(msg::undefined_store(&path.display));
                std::ptr::null_mut()
            }
        }
    })
}

/// `a.b.`'s cell through a cache line's miss: the Store cell at `path`, created (with its
/// parents) if needed, as the executor's `ref_store` walks; the line is refilled with it.
/// Null when the body panicked (the error is on the VM). Never collects (no safepoint: the
/// creation is the executor's walk, without its safepoint, as a cached write's is).
///
/// # Safety
/// Helper contract; `cache` is a cache line owned by the JIT of this VM.
pub unsafe extern "C" fn jit_ref_store_cell(vm: *mut Vm, path: *const Path, cache: *const StoreCacheLine) -> *mut CellObj {
    // SAFETY: helper contract.
    let vm = unsafe { &mut *vm };
    catch_panic(vm, std::ptr::null_mut(), |vm| {
        // SAFETY: helper contract; the cache line is JIT-owned and outlives the running code.
        let (path, cache) = unsafe { (&*path, &*cache) };
        let cell = vm.ref_store_cell(path);
        // The walk that made the cell finds it again (and marks what the line's epoch rules
        // need marked).
        let refilled = cache.refill(vm.graph(), path);
        debug_assert!(refilled.is_some_and(|c| c == cell), "the line holds the cell just made");
        cell.as_raw().as_ptr()
    })
}

/// `!a.b` through a cache line (`Vm::set_store_cached`, the executor's operation).
/// Safepoint: the virtual stack must be flushed.
///
/// # Safety
/// Helper contract; `cache` is a cache line owned by the JIT of this VM.
pub unsafe extern "C" fn jit_set_store(vm: *mut Vm, path: *const Path, cache: *const StoreCacheLine) -> i32 {
    // SAFETY: helper contract; the line outlives the running code.
    unsafe { guard(vm, |vm| vm.set_store_cached(&*path, &*cache)) }
}

/// `!a.b` of a value held by compiled code (not on the AL): the cached-write helper without
/// the pop. Never collects, so the caller's other virtual values need no flush.
///
/// # Safety
/// Helper contract; `cache` is a cache line owned by the JIT of this VM.
pub unsafe extern "C" fn jit_set_store_value(vm: *mut Vm, path: *const Path, cache: *const StoreCacheLine, v: u64) -> i32 {
    // SAFETY: helper contract; the line outlives the running code.
    unsafe {
        guard(vm, |vm| {
            vm.write_store_cached(&*path, &*cache, val(v));
            Ok(())
        })
    }
}

/// Run `v` if it is a Block with a native entry, compiling it first if it has none, through
/// `exec::call_entry` (the executor's protocol, with this call site's safepoint; `chained` as
/// in `abi::NativeEntry`). Returns `None` when `v` is anything else (the caller takes the
/// general path). Errors stay on the VM.
///
/// # Safety
/// Helper contract; every live value is rooted (the caller flushed), `v` is a live value.
#[inline]
unsafe fn call_compiled(vm: *mut Vm, v: Value, chained: bool) -> Option<i32> {
    // SAFETY: helper contract: a live VM, exclusively ours for the call.
    let vmr = unsafe { &mut *vm };
    let b = vmr.block_obj(v)?;
    // Native code compiles its callees on their first call from it.
    vmr.tier_up_now(v);
    let entry = b.native_entry.get()?;
    Some(soma_runtime::exec::call_entry(vmr, v, entry, chained, true))
}

/// Execute a value (Block, builtin, or the not-executable error). Safepoint when the value is
/// executable (Blocks and builtins are permanent roots, so `v` itself needs no root); the
/// virtual stack must be flushed. Compiled Blocks are called directly.
///
/// # Safety
/// Helper contract.
pub unsafe extern "C" fn jit_exec(vm: *mut Vm, v: u64) -> i32 {
    // SAFETY: helper contract.
    unsafe {
        let v = val(v);
        if let Some(st) = call_compiled(vm, v, false) {
            return st;
        }
        guard(vm, |vm| {
            if v.is_executable() {
                vm.safepoint()?;
            }
            vm.exec_value(v)
        })
    }
}

/// One `chain` iteration: execute `v`, then write the next value to run (the AL top, popped,
/// if executable) or Void to `out`. Safepoint. Compiled Blocks are called directly.
///
/// # Safety
/// Helper contract; `out` valid for one write.
pub unsafe extern "C" fn jit_chain_step(vm: *mut Vm, v: u64, out: *mut u64) -> i32 {
    // SAFETY: helper contract.
    unsafe {
        let st = jit_chain_round(vm, v);
        if st == SOMA_OK {
            out.write((*vm).chain_next().unwrap_or(Value::VOID).to_bits());
        }
        st
    }
}

/// The execution of one `chain` iteration: `v` run as a chain runs it (a compiled Block
/// told so, and left to run the rounds that chain it again itself), what it leaves on the
/// AL. Safepoint. Compiled code that calls a known chained Block inline takes this where
/// the inline call cannot be made (`Translator::gen_chain_known`).
///
/// # Safety
/// Helper contract.
pub unsafe extern "C" fn jit_chain_round(vm: *mut Vm, v: u64) -> i32 {
    // SAFETY: helper contract.
    unsafe {
        let v = val(v);
        match call_compiled(vm, v, true) {
            Some(st) => st,
            None => guard(vm, |vm| {
                vm.safepoint()?;
                vm.exec_value(v)
            }),
        }
    }
}

/// The poll hook's turn in a compiled block running its own next `chain` iteration (its
/// inline countdown reached zero): `Vm::poll_now`. An error (e.g. Ctrl-C) fails the block
/// entry, as in `Vm::enter_block`.
///
/// # Safety
/// Helper contract.
pub unsafe extern "C" fn jit_poll(vm: *mut Vm) -> i32 {
    // SAFETY: helper contract.
    unsafe { guard(vm, |vm| vm.poll_now()) }
}

/// Baseline code of `block` found its execution count at the optimizing tier's threshold:
/// queue (or make) the optimized compile. Never collects, never touches the AL, never fails
/// (a compile failure leaves the baseline code in place).
///
/// # Safety
/// Helper contract; `block` is the compiled Block's own value.
pub unsafe extern "C" fn jit_note_hot(vm: *mut Vm, block: u64) {
    // SAFETY: helper contract: a live VM, exclusively ours for the call.
    let Some(vm) = (unsafe { vm.as_mut() }) else { return };
    // SAFETY: compiled code passes its own Block's bits.
    let block = unsafe { val(block) };
    // Nothing to report: the compiler catches its own panics; this one only keeps an
    // unexpected panic from unwinding into compiled code.
    if let Some(hooks) = COMPILER_HOOKS.get() {
        let _ = catch_unwind(AssertUnwindSafe(|| (hooks.note_hot)(vm, block)));
    }
}

/// A poll region's test found fewer entries left on the countdown than the region makes:
/// take the due poll now if it can stop nothing (`Vm::poll_ahead`). Returns the countdown
/// re-armed, or 0: the code leaves for the executor, which takes the poll where it is due.
/// Never collects, never touches the AL, never runs the host hook.
///
/// # Safety
/// Helper contract.
pub unsafe extern "C" fn jit_poll_ahead(vm: *mut Vm) -> u32 {
    // SAFETY: helper contract: a live VM, exclusively ours for the call.
    let Some(vm) = (unsafe { vm.as_mut() }) else { return 0 };
    // `poll_ahead` has no panicking path; the catch only keeps an unexpected one from
    // unwinding into compiled code (0: the exact path).
    catch_unwind(AssertUnwindSafe(|| {
        let n = vm.poll_ahead();
        if n != 0 {
            if let Some(hooks) = COMPILER_HOOKS.get() {
                (hooks.note_early_poll)(vm);
            }
        }
        n
    }))
    .unwrap_or(0)
}

/// A compiled block with a heap Register running its own next `chain` iteration: drop the
/// frame's Register (`Vm::restart_frame`). Never collects.
///
/// # Safety
/// Helper contract.
pub unsafe extern "C" fn jit_restart_frame(vm: *mut Vm) -> i32 {
    // SAFETY: helper contract.
    unsafe {
        guard(vm, |vm| {
            vm.restart_frame();
            Ok(())
        })
    }
}

/// One frame a deoptimisation exit hands to the executor: the Block running in it and the
/// instruction to resume at.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct ResumePoint {
    pub block: u64,
    pub pc: u64,
}

/// Deoptimisation exit: interpret the rest of the running Codes. `points[0..n]` lists the
/// frames innermost first: `points[n - 1]` is the compiled Block's own frame (its caller
/// leaves it), the others are frames of Blocks inlined into it, entered by compiled code.
/// Each is resumed in its frame, which is then left, and so on outwards, as if the executor
/// had been running all along. The virtual stack must be flushed and every virtual Register
/// materialised. Errors come back positioned by the executor, with the inlined frames left.
///
/// `site` is the exit's site (`deopt::encode_site`): its reason and detail go to the
/// compiler; its pc is `points[0]`'s.
///
/// # Safety
/// Helper contract; `points` is readable for `n >= 1` entries of live Blocks, and the `n - 1`
/// innermost frames are the entered frames of `points[0..n - 1]`.
pub unsafe extern "C" fn jit_resume(vm: *mut Vm, points: *const ResumePoint, n: u64, site: u64) -> i32 {
    // SAFETY: helper contract.
    unsafe {
        let points = std::slice::from_raw_parts(points, n as usize);
        guard(vm, |vm| {
            let outer = points[points.len() - 1];
            let (_, reason, detail) = crate::deopt::decode_site(site);
            if let Some(hooks) = COMPILER_HOOKS.get() {
                let event = DeoptEvent {
                    block: val(outer.block),
                    pc: outer.pc as usize,
                    site: (val(points[0].block), points[0].pc as usize),
                    inlined: points.len() > 1,
                    reason,
                    detail,
                };
                (hooks.note_deopt)(vm, event);
            }
            for (i, p) in points.iter().enumerate() {
                let inlined_left = points.len() - 1 - i;
                if let Err(e) = soma_runtime::exec::resume(vm, val(p.block), p.pc as usize) {
                    vm.leave_blocks(inlined_left);
                    return Err(e);
                }
                if inlined_left > 0 {
                    vm.leave_block();
                }
            }
            Ok(())
        })
    }
}

/// Everything an exit from compiled code (an error or a deoptimisation) must rebuild,
/// described once at compile time so that the exit site is only a few stores and one call of
/// [`jit_exit`].
#[derive(Debug, Clone, PartialEq)]
pub struct ExitDesc {
    /// The translation levels at the exit, outermost (the compiled Block) first.
    pub levels: Vec<ExitLevel>,
    /// The virtual stack at the exit, bottom first: `None` for a value passed in the exit's
    /// buffer (same index), `Some(n)` for a virtual `_.` of level n's Register.
    pub pending: Vec<Option<usize>>,
    pub kind: ExitKind,
    /// Shadow slots the function has (filled in when the translation is done).
    pub slot_count: usize,
    /// Whether the function reserves its slots at entry. When it does not (nothing but its
    /// exits ever stores there, see `translate/register.rs`, "Slots reserved by the exits"),
    /// the slots are the words at the shadow stack's top, the exit stored the names it
    /// materialises there, and `jit_exit` reserves them before anything can collect.
    pub slots_reserved: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ExitLevel {
    pub block: Value,
    /// The level's frame is only counted in the depth (pushed here before anything else).
    pub virtual_frame: bool,
    pub reg: ExitReg,
    /// Where the executor resumes this level after a deopt: after the instruction that ran
    /// the next level (the innermost level's pc is the exit's site).
    pub resume_pc: usize,
}

/// A defined virtual Register name at an exit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ExitName {
    /// Its shadow slot.
    pub slot: usize,
    pub sym: soma_runtime::sym::Sym,
    /// A record name: the slot holds a CellRef to the cell `_.name` is, not its value.
    pub record: bool,
}

/// A level's Register at an exit.
#[derive(Debug, Clone, PartialEq)]
pub enum ExitReg {
    /// In its frame already.
    Heap,
    /// Defined virtual names.
    Virtual(Vec<ExitName>),
    /// The root holds a CellRef to level n's root.
    Alias(usize),
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ExitKind {
    /// An error in a Code of `module` (the status is passed through); which Code and
    /// instruction comes with each call of [`jit_exit`] (exits of the same shape share code).
    Error { module: u32 },
    /// Interpret the rest of every level.
    Deopt,
}

/// Leave compiled code at an exit described by `desc`: make the virtual frames real,
/// materialise the Registers (always for a deopt; for an error when a virtual `_.` is
/// pending), push the pending values, release the shadow slots, then either position the
/// error and unwind the inlined frames, or hand every level to the executor. Returns the
/// status to return. `values` holds the pending values, `slots` the function's shadow slots
/// (null when it has none), `site` says where: `code << 32 | pc` of an error (the Code's index
/// in the module and the instruction's; `position_error`), the pc of the
/// innermost level for a deopt.
///
/// # Safety
/// Helper contract; `desc` is an exit description of the running code, `values` readable for
/// `desc.pending.len()` entries of live values, `slots` for `desc.slot_count`.
pub unsafe extern "C" fn jit_exit(
    vm: *mut Vm,
    status: i32,
    desc: *const ExitDesc,
    values: *const u64,
    slots: *const u64,
    site: u64,
) -> i32 {
    // SAFETY: helper contract.
    let (d, vmr) = unsafe { (&*desc, &mut *vm) };
    catch_panic(vmr, SOMA_INTERNAL, |vmr| {
        if !d.slots_reserved && !slots.is_null() {
            // Reserve the slots the function left unreserved, before anything here can
            // collect: the names this exit materialises are stored, the rest is made Void
            // (it may hold what a callee's frame left there).
            let mut named = vec![false; d.slot_count];
            for l in &d.levels {
                if let ExitReg::Virtual(names) = &l.reg {
                    for n in names {
                        named[n.slot] = true;
                    }
                }
            }
            for (i, _) in named.iter().enumerate().filter(|(_, &n)| !n) {
                // SAFETY: the slots are the `slot_count` words at the shadow stack's top,
                // within its capacity (the function's entry checked that they fit), and no
                // one else uses them now (every callee of the function has returned).
                unsafe { (slots as *mut u64).add(i).write(Value::VOID.to_bits()) };
            }
            vmr.shadow_adopt(slots, d.slot_count);
        }
        let virtual_frames: Vec<Value> = d.levels.iter().filter(|l| l.virtual_frame).map(|l| l.block).collect();
        vmr.push_frames_uncounted(&virtual_frames);
        let depth = d.levels.len() - 1;
        let materialize = matches!(d.kind, ExitKind::Deopt) || d.pending.iter().any(Option::is_some);
        if materialize && !slots.is_null() {
            for (i, level) in d.levels.iter().enumerate() {
                match &level.reg {
                    ExitReg::Heap => {}
                    ExitReg::Virtual(names) => {
                        for n in names {
                            // SAFETY: the slot index is below `slot_count`.
                            let v = unsafe { val(*slots.add(n.slot)) };
                            match v.as_cell().filter(|_| n.record) {
                                Some(cell) => vmr.reg_attach_at(depth - i, n.sym, cell),
                                None => vmr.reg_write_at(depth - i, n.sym, v),
                            }
                        }
                    }
                    ExitReg::Alias(target) => {
                        let root = vmr.reg_root_ref_at(depth - target);
                        vmr.reg_set_root_at(depth - i, root);
                    }
                }
            }
        }
        for (i, p) in d.pending.iter().enumerate() {
            let v = match p {
                Some(level) => vmr.reg_root_ref_at(depth - level),
                // SAFETY: `values` holds the pending values.
                None => unsafe { val(*values.add(i)) },
            };
            vmr.push(v);
        }
        if !slots.is_null() {
            vmr.shadow_release(d.slot_count);
        }
        match d.kind {
            ExitKind::Error { module } => {
                position_error(vmr, (site >> 32) as u32, site as u32, module);
                vmr.leave_blocks(depth);
                status
            }
            ExitKind::Deopt => {
                let (pc, _, _) = crate::deopt::decode_site(site);
                let points: Vec<ResumePoint> = d
                    .levels
                    .iter()
                    .rev()
                    .enumerate()
                    .map(|(i, l)| ResumePoint {
                        block: l.block.to_bits(),
                        pc: if i == 0 { pc as u64 } else { l.resume_pc as u64 },
                    })
                    .collect();
                // SAFETY: the points describe the frames just made real, innermost first.
                unsafe { jit_resume(vm, points.as_ptr(), points.len() as u64, site) }
            }
        }
    })
}

/// Enter the frame of a Block whose body runs inline in compiled code (`Vm::enter_inlined`:
/// a step; the recursion error when too deep; a limit error at the poll's turn). Never
/// collects.
///
/// # Safety
/// Helper contract; `block` is a live Block.
pub unsafe extern "C" fn jit_enter_inlined(vm: *mut Vm, block: u64) -> i32 {
    // SAFETY: helper contract.
    unsafe { guard(vm, |vm| vm.enter_inlined(val(block))) }
}

/// Make the virtual frames of inlined bodies real: push frames for `blocks[0..n]`
/// (outermost first), already counted in the depth. Never collects. Compiled code pops them
/// itself (`Translator::emit_leave_realized`).
///
/// # Safety
/// Helper contract; `blocks` readable for `n` live Blocks.
pub unsafe extern "C" fn jit_frames_enter(vm: *mut Vm, blocks: *const u64, n: u64) -> i32 {
    // SAFETY: helper contract.
    unsafe {
        let blocks = std::slice::from_raw_parts(blocks as *const Value, n as usize);
        guard(vm, |vm| {
            vm.push_frames_uncounted(blocks);
            Ok(())
        })
    }
}

/// The poll's turn entering an inlined body with a virtual frame (`Vm::poll_inlined`: the
/// resource limits, not the host). Never collects.
///
/// # Safety
/// Helper contract.
pub unsafe extern "C" fn jit_poll_inlined(vm: *mut Vm) -> i32 {
    // SAFETY: helper contract.
    unsafe { guard(vm, |vm| vm.poll_inlined()) }
}

/// Record the recursion error (the depth limit reached entering an inlined body).
///
/// # Safety
/// Helper contract.
pub unsafe extern "C" fn jit_recursion_error(vm: *mut Vm) -> i32 {
    // SAFETY: helper contract.
    unsafe { guard(vm, |vm| Err(msg::recursion(vm.max_depth()))) }
}

/// Record `Undefined Register path` for `path` (a virtual Register without that name).
///
/// # Safety
/// Helper contract.
pub unsafe extern "C" fn jit_undefined_reg(vm: *mut Vm, path: *const Path) -> i32 {
    // SAFETY: helper contract.
    unsafe { guard(vm, |_| Err(msg::undefined_register(&(*path).display))) }
}

/// Leave the `n` innermost frames (inlined bodies ending, normally or by an error).
///
/// # Safety
/// Helper contract; at least `n` block frames are entered.
pub unsafe extern "C" fn jit_leave_blocks(vm: *mut Vm, n: u64) -> i32 {
    // SAFETY: helper contract.
    unsafe {
        guard(vm, |vm| {
            vm.leave_blocks(n as usize);
            Ok(())
        })
    }
}

/// Pop the value a `!_.x` statement writes into `out` (`AL underflow: store requires value
/// on AL` when the AL is empty; the path is not part of the message). Never collects.
///
/// # Safety
/// Helper contract; `out` valid for one write.
pub unsafe extern "C" fn jit_pop_for_store(vm: *mut Vm, _path: *const Path, out: *mut u64) -> i32 {
    // SAFETY: helper contract.
    unsafe {
        guard(vm, |vm| {
            let v = vm.pop().ok_or_else(msg::store_underflow)?;
            out.write(v.to_bits());
            Ok(())
        })
    }
}

/// Wall-clock accounting of time spent in compiled code (`JitConfig::time_native`). Compiled
/// functions call [`jit_time_begin`] on entry and [`jit_time_end`] on every return; only the
/// outermost compiled frame counts, so time in helpers and interpreted blocks called from
/// native code is included, and nested native frames are not counted twice.
#[repr(C)]
#[derive(Debug, Default)]
pub struct NativeClock {
    pub nest: u64,
    pub start_ns: u64,
    pub total_ns: u64,
}

fn now_ns() -> u64 {
    static EPOCH: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    EPOCH.get_or_init(std::time::Instant::now).elapsed().as_nanos() as u64
}

/// # Safety
/// `clock` is the JIT-owned clock of the running VM (not aliased during the call).
pub unsafe extern "C" fn jit_time_begin(clock: *mut NativeClock) {
    // SAFETY: caller contract.
    let c = unsafe { &mut *clock };
    if c.nest == 0 {
        c.start_ns = now_ns();
    }
    c.nest += 1;
}

/// # Safety
/// As [`jit_time_begin`], paired with it.
pub unsafe extern "C" fn jit_time_end(clock: *mut NativeClock) {
    // SAFETY: caller contract.
    let c = unsafe { &mut *clock };
    c.nest = c.nest.saturating_sub(1);
    if c.nest == 0 {
        c.total_ns += now_ns().saturating_sub(c.start_ns);
    }
}

/// Position the pending error at the instruction `pc` of Code `code` of module `module` unless
/// it already has a position, and then (as the executor does) note that module as the error's
/// source. Compiled code passes the instruction, not its `line:col`, so that its machine code
/// does not depend on where the Code stands in its source.
///
/// # Safety
/// Helper contract.
pub unsafe extern "C" fn jit_error_at(vm: *mut Vm, code: u32, pc: u32, module: u32) {
    // SAFETY: helper contract.
    let Some(vm) = (unsafe { vm.as_mut() }) else { return };
    catch_panic(vm, (), |vm| position_error(vm, code, pc, module));
}

fn position_error(vm: &mut Vm, code: u32, pc: u32, module: u32) {
    let Some(e) = vm.take_error() else { return };
    // Every site compiled code passes is an instruction of a loaded module's Code; were one
    // not, the error would stay unpositioned rather than get a wrong position.
    let e = match vm.module(module).cloned() {
        Some(m) => match m.module.codes.get(code as usize).and_then(|c| c.instrs.get(pc as usize)) {
            Some(ins) => vm.position_error(e, ins.line, ins.col, &m),
            None => e,
        },
        None => e,
    };
    vm.set_error(e);
}
