//! Replayed translations: a tier-up that another VM of the process (or this one) already
//! translated, against a Store that answers the same, installs that translation's machine
//! code and rebuilds its side tables for this VM, without building the IR again.
//!
//! # Why
//! The code cache (`code_cache.rs`) spares a later VM the code generation of a Block, not its
//! translation: the cache is keyed by the IR, so the IR had to be built first. Building it is
//! most of what a cache hit still costs (about 600 host instructions per CLIF instruction),
//! and a warm VM spends 8-12% of its run translating Blocks whose code it then takes from the
//! cache: a benchmark's repeats, each test of a `soma test` file, a server's requests.
//!
//! # What makes a replay the VM's own translation
//! A translation is a deterministic function of what it reads:
//! * the Codes it translates or looks into (the compiled one, the Blocks it inlines, the
//!   callees it scans), by content (compared whole: a hash of it can collide);
//! * what the Store holds at each path it asks about;
//! * what the type feedback says of each site and path it asks about;
//! * its [`ReplayKey`]: the Block's Code, the tier, the options the compiler chose and the
//!   ISA.
//!
//! Every one of those questions goes through [`crate::translate::CodeEnv`], which notes it with
//! its answer in a [`QueryLog`]. An answer is kept in terms that mean the same in every VM
//! ([`Seen`]): a Block is its module and Code, a builtin its id, a small Int only that it is
//! one (the translator never uses its value: it speculates on the kind and checks it in the
//! pre-header), any other immediate its bits, another heap value its tag. A replay asks this
//! VM every noted question again; when every answer is the same, the translator, asked the
//! same questions in the same order, would make the same decisions and build an equal
//! function, whose machine code the template holds.
//!
//! What differs between VMs is the values the code refers to: its VM constants (addresses and
//! heap values, `translate::vm_const`) and the side tables the translation allocated (exit
//! descriptions, cache lines, resume points, validation tables, pre-header checks). When the
//! template is made, each such value is traced to its [`Origin`]: the Block of a Code, a
//! constant of a Code, the value found at a noted Store path, a path of a Code, the graph's
//! counters, the JIT's counters, or a place in memory the translation owns. A value traced to
//! nothing makes no template (the Block is then translated in every VM, as before). A replay
//! evaluates every origin in this VM, allocates the side tables afresh in their initial state
//! and fills them with this VM's values. Two origins that gave one value in the VM that made
//! the template must give one value here, and two that gave different values different ones
//! (the translator compares values: a Block with itself, a guard with the path's value), or
//! the template is not used.
//!
//! # Checked
//! With `JitConfig::check_replay` (debug builds, the Rust tests, and the `.soma` and pytest
//! JIT tiers of `scripts/test-all.sh` through `SOMA_JIT_CHECK_REPLAY=1`) every replay is
//! followed by the translation it stands for, and the template of that translation must equal
//! the replayed one: the same questions and answers, the same origins everywhere, the same
//! function (by its stencil's hash). A difference aborts the process with both. A question
//! the translator asks without noting it shows up there as soon as two VMs answer it
//! differently.
//!
//! # Threads and bounds
//! Templates are plain data (origins, names, answers, machine code): nothing of a VM is
//! reachable from them. One `Mutex` guards the table; a replay clones an `Arc` out of it and
//! works unlocked. At most [`MAX_TEMPLATES`] templates and about [`MAX_BYTES`], oldest out
//! first, at most [`PER_KEY`] per key.

use crate::code_cache::{code_image, MachineCode};
use crate::feedback::TypeFeedback;
use crate::helpers::{ExitDesc, HoistedCheck, ResumePoint};
pub use crate::queries::{QueryLog, Seen};
use crate::translate::Translated;
use cranelift_codegen::ir;
use rustc_hash::FxHashMap;
use soma_runtime::decode::Path;
use soma_runtime::heap::BlockObj;
use soma_runtime::store_cache::StoreCacheLine;
use soma_runtime::value::Value;
use soma_runtime::Vm;
use std::cell::Cell;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex, OnceLock};

/// Most templates kept.
pub const MAX_TEMPLATES: usize = 2048;
/// Most bytes kept (estimated: machine code plus a size per origin and answer).
pub const MAX_BYTES: usize = 32 << 20;
/// Most templates per key (Stores that answer differently, feedback learnt in one VM).
pub const PER_KEY: usize = 4;

/// Everything a translation depended on besides its questions: which Code, which tier, the
/// options the compiler chose for it, the ISA.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct ReplayKey {
    pub module: u32,
    pub code: u32,
    /// The Code's content (`code_cache::code_fingerprint`).
    pub fingerprint: u64,
    pub tier: u8,
    /// `CodeEnv`'s switches, one bit each (see `Jit::replay_key`).
    pub flags: u16,
    pub hot_at: Option<u64>,
    pub quiet_poll_ahead: Option<u32>,
    /// `code_cache::isa_fingerprint` of the tier's ISA.
    pub isa: u64,
}

/// Where a value the code refers to comes from, in terms that mean the same in every VM.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
pub enum Origin {
    /// The same number in every VM: 0 (a placeholder), a dangling address of an empty
    /// allocation (below [`FIXED_BELOW`]), or an immediate Value where a field holds one.
    Fixed(u64),
    /// The value of the Block of Code `code` of `module`.
    Block { module: u32, code: u32 },
    /// `offset` bytes into that Block's object (its execution count, its native entry).
    BlockField { module: u32, code: u32, offset: u32 },
    /// The value constant `k` of that Code pushes (a Str, a BigInt).
    Const { module: u32, code: u32, k: u32 },
    /// The value at the Store path of question `q` (a builtin).
    Store(u32),
    /// The address of path `k` of that Code.
    Path { module: u32, code: u32, k: u32 },
    /// The graph's structural epoch and write counter.
    Epoch,
    Writes,
    /// The JIT's revalidation counter and native-time clock.
    Revalidated,
    Clock,
    /// `offset` bytes into memory the translation allocated.
    Owned { kind: Owned, index: u32, offset: u32 },
}

/// Below this, a VM constant is a number every VM shares (no allocation lives there).
const FIXED_BELOW: u64 = 4096;

/// The memory a translation allocates (`Translated`'s boxes).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
pub enum Owned {
    CacheLine,
    ResumePoints,
    Validations,
    FrameList,
    Exit,
    Superseded,
    Hoisted,
    SelfEntry,
    DirectBuf,
}

/// The addresses of this VM and JIT that origins name directly.
#[derive(Clone, Copy)]
pub struct EnvAddrs {
    pub epoch: u64,
    pub writes: u64,
    pub revalidated: Option<u64>,
    pub clock: Option<u64>,
}

/// A pre-header check (`helpers::HoistedCheck`) with its values as origins.
#[derive(Clone, PartialEq, Debug)]
struct HoistedTemplate {
    comps: Vec<String>,
    path: Origin,
    cache: Origin,
    guard: Option<Origin>,
    int: bool,
    written: bool,
    holds_ref: bool,
}

/// `Translated`'s counts, copied as they are.
#[derive(Clone, Copy, PartialEq, Debug, Default)]
struct Counts {
    inlined: usize,
    direct_call_sites: usize,
    folded_compares: usize,
    child_reads: usize,
    record_sites: usize,
    record_batches: usize,
    singleton_tests: usize,
    sunk_cells: usize,
    region_reentries: usize,
    bounded_checks: usize,
    fused_checks: usize,
    nested_choices: usize,
    realized_chains: usize,
    known_chains: usize,
    retaken_entries: usize,
    exit_reserved_slots: bool,
    known_choices: usize,
    speculative: bool,
    unrolled: bool,
    leaf_copies: usize,
    partial_flushes: usize,
}

/// A translation as every VM can use it (see the module docs).
pub struct Template {
    pub key: ReplayKey,
    stores: Vec<(Vec<String>, Seen)>,
    /// Codes read, with their images (`code_cache::code_image`: compared whole, a hash could
    /// collide).
    codes: Vec<(u32, u32, Arc<[u8]>)>,
    sites: Vec<(u32, u32, usize, bool)>,
    paths: Vec<(Vec<String>, bool)>,
    /// Every value traced by identity, with its bits in the VM that made the template (for
    /// the one-to-one check).
    exact: Vec<(u64, Origin)>,
    vm_consts: Vec<Origin>,
    cache_lines: usize,
    resume_points: Vec<Vec<(Origin, u64)>>,
    validations: Vec<Vec<u64>>,
    frame_lists: Vec<Vec<Origin>>,
    /// Exit descriptions with their levels' Blocks cleared, and those Blocks' origins.
    exits: Vec<(ExitDesc, Vec<Origin>)>,
    hoisted: Vec<HoistedTemplate>,
    assumptions: Vec<(Vec<String>, Origin)>,
    direct_buf: Vec<u64>,
    counts: Counts,
    inlined_codes: Vec<(u32, u32)>,
    /// Translations abandoned before this one succeeded (`JitStats::retranslations`).
    pub given_up: usize,
    /// The function's signature and external names: what the install resolves the machine
    /// code's relocations through.
    signature: ir::Signature,
    names: Vec<ir::UserExternalName>,
    /// The hash of the function's stencil (`code_cache::CacheKey`).
    stencil: u64,
    code: Option<Arc<MachineCode>>,
    /// Its number in the table (the eviction order names templates by it).
    serial: u64,
}

/// The addresses a translation's values may be traced to.
#[derive(Default)]
struct Book {
    exact: FxHashMap<u64, Origin>,
    /// (start, length, what): origins by the range they fall in.
    ranges: Vec<(u64, u64, Range)>,
}

#[derive(Clone, Copy)]
enum Range {
    BlockObj { module: u32, code: u32 },
    Paths { module: u32, code: u32 },
    Owned(Owned, u32),
}

impl Book {
    fn exact(&mut self, bits: u64, o: Origin) {
        self.exact.entry(bits).or_insert(o);
    }

    fn block(&mut self, vm: &Vm, module: u32, code: u32) {
        let Some(&v) = vm.module(module).and_then(|m| m.blocks.get(code as usize)) else { return };
        let Some(p) = v.as_block_obj() else { return };
        self.exact(v.to_bits(), Origin::Block { module, code });
        let len = std::mem::size_of::<BlockObj>() as u64;
        self.ranges.push((p.as_ptr() as u64, len, Range::BlockObj { module, code }));
    }

    fn owned<T>(&mut self, kind: Owned, index: usize, start: *const T, count: usize) {
        let len = (count * std::mem::size_of::<T>()) as u64;
        if len > 0 {
            self.ranges.push((start as u64, len, Range::Owned(kind, index as u32)));
        }
    }

    fn origin(&self, x: u64) -> Option<Origin> {
        if x < FIXED_BELOW {
            return Some(Origin::Fixed(x));
        }
        if let Some(&o) = self.exact.get(&x) {
            return Some(o);
        }
        // The ranges are sorted by start and never overlap (distinct allocations).
        let i = self.ranges.partition_point(|&(s, _, _)| s <= x).checked_sub(1)?;
        let (start, len, what) = self.ranges[i];
        if x - start >= len {
            return None;
        }
        let offset = (x - start) as u32;
        Some(match what {
            Range::BlockObj { module, code } => Origin::BlockField { module, code, offset },
            Range::Paths { module, code } => {
                let size = std::mem::size_of::<Path>() as u32;
                if !offset.is_multiple_of(size) {
                    return None;
                }
                Origin::Path { module, code, k: offset / size }
            }
            Range::Owned(kind, index) => Origin::Owned { kind, index, offset },
        })
    }
}

/// The template of translation `t` (just made, not yet run or installed), or why there is
/// none: a value it refers to that no origin explains. `codes`: this VM's Code images
/// computed so far (modules never change once loaded).
#[allow(clippy::too_many_arguments)]
pub fn capture(
    vm: &Vm,
    key: ReplayKey,
    log: &QueryLog,
    addrs: EnvAddrs,
    t: &Translated,
    func: &ir::Function,
    stencil: u64,
    given_up: usize,
    images: &mut FxHashMap<(u32, u32), Arc<[u8]>>,
) -> Result<Template, String> {
    let mut book = Book::default();
    for (q, (_, seen, bits)) in log.stores.iter().enumerate() {
        match (*seen, *bits) {
            (Seen::Block { module, code }, _) => book.block(vm, module, code),
            (Seen::Builtin(_), Some(b)) => book.exact(b, Origin::Store(q as u32)),
            _ => {}
        }
    }
    let mut codes = Vec::with_capacity(log.codes.len());
    for &(module, code) in &log.codes {
        let m = vm.module(module).ok_or("a module read is gone")?;
        let c = &m.module.codes[code as usize];
        let image = images.entry((module, code)).or_insert_with(|| code_image(c).into()).clone();
        codes.push((module, code, image));
        book.block(vm, module, code);
        for (k, v) in m.consts[code as usize].iter().enumerate() {
            if let Some(b) = vm.block_obj(*v) {
                book.block(vm, b.module, b.code);
            } else if v.is_heap() {
                book.exact(v.to_bits(), Origin::Const { module, code, k: k as u32 });
            }
        }
        let len = (c.paths.len() * std::mem::size_of::<Path>()) as u64;
        if len > 0 {
            book.ranges.push((c.paths.as_ptr() as u64, len, Range::Paths { module, code }));
        }
    }
    book.exact(addrs.epoch, Origin::Epoch);
    book.exact(addrs.writes, Origin::Writes);
    if let Some(a) = addrs.revalidated {
        book.exact(a, Origin::Revalidated);
    }
    if let Some(a) = addrs.clock {
        book.exact(a, Origin::Clock);
    }
    for (i, line) in t.cache_lines.iter().enumerate() {
        book.owned(Owned::CacheLine, i, &**line as *const StoreCacheLine, 1);
    }
    for (i, p) in t.resume_points.iter().enumerate() {
        book.owned(Owned::ResumePoints, i, p.as_ptr(), p.len());
    }
    for (i, v) in t.validations.iter().enumerate() {
        book.owned(Owned::Validations, i, v.as_ptr(), v.len());
    }
    for (i, l) in t.frame_lists.iter().enumerate() {
        book.owned(Owned::FrameList, i, l.as_ptr(), l.len());
    }
    for (i, e) in t.exits.iter().enumerate() {
        book.owned(Owned::Exit, i, &**e as *const ExitDesc, 1);
    }
    book.owned(Owned::Superseded, 0, &*t.superseded as *const Cell<u64>, 1);
    book.owned(Owned::Hoisted, 0, t.hoisted.as_ptr(), t.hoisted.len());
    book.owned(Owned::SelfEntry, 0, &*t.self_entry as *const Cell<u64>, 1);
    book.owned(Owned::DirectBuf, 0, t.direct_buf.as_ptr(), t.direct_buf.len());

    book.ranges.sort_unstable_by_key(|&(start, _, _)| start);
    let trace = |x: u64, what: &str| book.origin(x).ok_or_else(|| format!("{what} {x:#x} has no known origin"));
    // A field that holds a Value: an immediate (`True`, `Nil`, an Int) is the same in every VM.
    let trace_value = |x: u64, what: &str| {
        // SAFETY: only the tag is looked at; no reference is made from the bits.
        if unsafe { Value::from_bits(x) }.is_heap() {
            trace(x, what)
        } else {
            Ok(Origin::Fixed(x))
        }
    };
    let vm_consts = t.vm_consts.iter().map(|&x| trace(x, "a VM constant")).collect::<Result<Vec<_>, _>>()?;
    let resume_points = t
        .resume_points
        .iter()
        .map(|p| p.iter().map(|r| Ok((trace(r.block, "a resume point's Block")?, r.pc))).collect())
        .collect::<Result<Vec<Vec<_>>, String>>()?;
    let frame_lists = t
        .frame_lists
        .iter()
        .map(|l| l.iter().map(|&b| trace(b, "a frame list's Block")).collect())
        .collect::<Result<Vec<Vec<_>>, String>>()?;
    let exits = t
        .exits
        .iter()
        .map(|e| {
            let blocks = e.levels.iter().map(|l| trace(l.block.to_bits(), "an exit level's Block")).collect::<Result<Vec<_>, _>>()?;
            let mut d = (**e).clone();
            for l in &mut d.levels {
                l.block = Value::VOID;
            }
            Ok((d, blocks))
        })
        .collect::<Result<Vec<_>, String>>()?;
    let hoisted = t
        .hoisted
        .iter()
        .map(|h| {
            Ok(HoistedTemplate {
                comps: h.comps.clone(),
                path: trace(h.path as u64, "a check's path")?,
                cache: trace(h.cache as u64, "a check's cache line")?,
                guard: h.guard.map(|g| trace_value(g, "a check's guard")).transpose()?,
                int: h.int,
                written: h.written,
                holds_ref: h.holds_ref,
            })
        })
        .collect::<Result<Vec<_>, String>>()?;
    let assumptions = t
        .assumptions
        .iter()
        .map(|(c, b)| Ok((c.clone(), trace_value(*b, "an assumption")?)))
        .collect::<Result<Vec<_>, String>>()?;
    let mut exact: Vec<(u64, Origin)> = book.exact.iter().map(|(&b, &o)| (b, o)).collect();
    exact.sort_by_key(|&(b, _)| b);
    Ok(Template {
        key,
        stores: log.stores.iter().map(|(c, s, _)| (c.clone(), *s)).collect(),
        codes,
        sites: log.sites.clone(),
        paths: log.paths.clone(),
        exact,
        vm_consts,
        cache_lines: t.cache_lines.len(),
        resume_points,
        validations: t.validations.iter().map(|v| v.iter().map(Cell::get).collect()).collect(),
        frame_lists,
        exits,
        hoisted,
        assumptions,
        direct_buf: t.direct_buf.iter().map(Cell::get).collect(),
        inlined_codes: t.inlined_codes.clone(),
        counts: Counts {
            inlined: t.inlined,
            direct_call_sites: t.direct_call_sites,
            folded_compares: t.folded_compares,
            child_reads: t.child_reads,
            record_sites: t.record_sites,
            record_batches: t.record_batches,
            singleton_tests: t.singleton_tests,
            sunk_cells: t.sunk_cells,
            region_reentries: t.region_reentries,
            bounded_checks: t.bounded_checks,
            fused_checks: t.fused_checks,
            nested_choices: t.nested_choices,
            realized_chains: t.realized_chains,
            known_chains: t.known_chains,
            retaken_entries: t.retaken_entries,
            exit_reserved_slots: t.exit_reserved_slots,
            known_choices: t.known_choices,
            speculative: t.speculative,
            unrolled: t.unrolled,
            leaf_copies: t.leaf_copies,
            partial_flushes: t.partial_flushes,
        },
        given_up,
        signature: func.signature.clone(),
        names: func.params.user_named_funcs().values().cloned().collect(),
        stencil,
        code: None,
        serial: 0,
    })
}

impl Template {
    /// Where this template differs from `other` (made by the same translation in another VM,
    /// or this one), ignoring the values' bits in either VM; `None` when nowhere.
    pub fn difference(&self, other: &Template) -> Option<String> {
        macro_rules! same {
            ($($f:ident),*) => {$(
                if self.$f != other.$f {
                    return Some(format!("{}: {:?}\n  against {:?}", stringify!($f), self.$f, other.$f));
                }
            )*};
        }
        same!(key, stores, codes, sites, paths, vm_consts, cache_lines, resume_points, validations);
        same!(frame_lists, exits, hoisted, assumptions, direct_buf, counts, inlined_codes, given_up, signature, names, stencil);
        (!self.same_origins(other)).then(|| "the values traced by identity".to_string())
    }

    /// Whether the two templates stand for the same translation (see [`Self::difference`]),
    /// without describing how they differ.
    fn same_as(&self, o: &Template) -> bool {
        (&self.key, &self.stores, &self.codes, &self.sites, &self.paths, &self.vm_consts, self.cache_lines)
            == (&o.key, &o.stores, &o.codes, &o.sites, &o.paths, &o.vm_consts, o.cache_lines)
            && (&self.resume_points, &self.validations, &self.frame_lists, &self.exits, &self.hoisted)
                == (&o.resume_points, &o.validations, &o.frame_lists, &o.exits, &o.hoisted)
            && (&self.assumptions, &self.direct_buf, self.counts, &self.inlined_codes, self.given_up)
                == (&o.assumptions, &o.direct_buf, o.counts, &o.inlined_codes, o.given_up)
            && (&self.signature, &self.names, self.stencil) == (&o.signature, &o.names, o.stencil)
            && self.same_origins(o)
    }

    /// Whether both trace the same origins by identity (their bits differ between VMs).
    fn same_origins(&self, other: &Template) -> bool {
        let origins = |t: &Template| {
            let mut o: Vec<Origin> = t.exact.iter().map(|&(_, o)| o).collect();
            o.sort_unstable();
            o
        };
        origins(self) == origins(other)
    }

    fn bytes(&self) -> usize {
        let code = self.code.as_ref().map_or(0, |c| c.bytes.len());
        let images: usize = self.codes.iter().map(|(_, _, i)| i.len()).sum();
        code + images + 32 * (self.vm_consts.len() + self.exact.len() + self.stores.len() + self.codes.len())
            + 256 * (self.exits.len() + self.hoisted.len())
    }

    /// What installing the machine code links against: the function's signature and
    /// external names.
    pub(crate) fn imports(&self) -> crate::code_cache::Imports<'_> {
        crate::code_cache::Imports { signature: &self.signature, names: &self.names }
    }
}

#[derive(Default)]
struct Table {
    by_key: FxHashMap<ReplayKey, Vec<Arc<Template>>>,
    /// Templates in the order they came, by key and serial.
    order: VecDeque<(ReplayKey, u64)>,
    next_serial: u64,
    count: usize,
    bytes: usize,
}

impl Table {
    /// Drop the template `serial` of `key`, if the table still has it.
    fn remove(&mut self, key: ReplayKey, serial: u64) {
        let Some(list) = self.by_key.get_mut(&key) else { return };
        let Some(i) = list.iter().position(|t| t.serial == serial) else { return };
        let gone = list.remove(i);
        if list.is_empty() {
            self.by_key.remove(&key);
        }
        self.count -= 1;
        self.bytes -= gone.bytes();
    }
}

fn table() -> std::sync::MutexGuard<'static, Table> {
    static TABLE: OnceLock<Mutex<Table>> = OnceLock::new();
    // Every update below completes before anything can panic: poison is ignored.
    TABLE.get_or_init(Default::default).lock().unwrap_or_else(|e| e.into_inner())
}

/// Keep `t` with the machine code generated for its function, unless an equal template is
/// kept already.
pub fn keep(mut t: Template, code: &MachineCode) {
    t.code = Some(Arc::new(code.to_keep()));
    let bytes = t.bytes();
    if bytes > MAX_BYTES {
        return;
    }
    let mut tab = table();
    let key = t.key;
    if tab.by_key.get(&key).is_some_and(|list| list.iter().any(|k| k.same_as(&t))) {
        return;
    }
    tab.next_serial += 1;
    t.serial = tab.next_serial;
    tab.order.push_back((key, t.serial));
    tab.count += 1;
    tab.bytes += bytes;
    let list = tab.by_key.entry(key).or_default();
    list.insert(0, Arc::new(t));
    // A full key loses its oldest template; the table, its oldest ones.
    if list.len() > PER_KEY {
        let oldest = list[PER_KEY].serial;
        tab.remove(key, oldest);
    }
    while tab.count > MAX_TEMPLATES || tab.bytes > MAX_BYTES {
        let Some((k, serial)) = tab.order.pop_front() else { break };
        tab.remove(k, serial);
    }
    // Templates a full key dropped leave their place in the order behind: sweep them out
    // before they outnumber the living.
    if tab.order.len() > 2 * MAX_TEMPLATES {
        let Table { order, by_key, .. } = &mut *tab;
        order.retain(|(k, s)| by_key.get(k).is_some_and(|l| l.iter().any(|t| t.serial == *s)));
    }
}

/// What a replay gives the compiler: the translation's data for this VM and the template it
/// came from (its machine code, function shape and counts).
pub struct Replayed {
    pub data: Translated,
    pub template: Arc<Template>,
}

impl Replayed {
    /// The machine code of the replayed translation's function.
    pub fn code_arc(&self) -> Arc<MachineCode> {
        self.template.code.clone().expect("kept templates have code")
    }
}

/// What this VM and JIT answer a template's questions with.
pub struct Answers<'a> {
    pub vm: &'a Vm,
    pub feedback: &'a TypeFeedback,
    pub addrs: EnvAddrs,
    /// Images of this VM's Codes computed so far (modules never change once loaded).
    pub images: &'a mut FxHashMap<(u32, u32), Arc<[u8]>>,
}

/// A translation kept under `key` whose questions this VM answers alike, rebuilt for it.
pub fn replay(key: &ReplayKey, a: &mut Answers) -> Option<Replayed> {
    let candidates: Vec<Arc<Template>> = table().by_key.get(key)?.clone();
    candidates.into_iter().find_map(|t| {
        let data = instantiate(&t, a)?;
        Some(Replayed { data, template: t })
    })
}

/// `t`'s side tables and VM constants for this VM, if it answers every question of `t` the
/// same and its values correspond one to one.
fn instantiate(t: &Template, a: &mut Answers) -> Option<Translated> {
    let vm = a.vm;
    let mut found = Vec::with_capacity(t.stores.len());
    for (comps, seen) in &t.stores {
        let comps: Vec<&str> = comps.iter().map(|c| &**c).collect();
        let v = vm.read_store_path(&comps);
        if Seen::of(vm, v) != *seen {
            return None;
        }
        found.push(v.map(Value::to_bits));
    }
    for (module, code, image) in &t.codes {
        let mine = match a.images.get(&(*module, *code)) {
            Some(i) => i.clone(),
            None => {
                let c = vm.module(*module)?.module.codes.get(*code as usize)?;
                let i: Arc<[u8]> = code_image(c).into();
                a.images.insert((*module, *code), i.clone());
                i
            }
        };
        if mine != *image {
            return None;
        }
    }
    if t.sites.iter().any(|&(m, c, pc, wide)| a.feedback.site_is_wide(m, c, pc) != wide)
        || t.paths.iter().any(|(comps, wide)| a.feedback.path_is_wide(comps) != *wide)
    {
        return None;
    }
    let direct = |o: Origin| resolve(o, vm, &found, a.addrs);
    // One to one: equal bits there, equal bits here; different there, different here.
    let mut pairs = Vec::with_capacity(t.exact.len());
    for &(there, o) in &t.exact {
        pairs.push((there, direct(o)?));
    }
    let mut here: Vec<(u64, u64)> = pairs.iter().map(|&(a, b)| (b, a)).collect();
    here.sort_unstable();
    here.dedup();
    if here.windows(2).any(|w| w[0].0 == w[1].0) {
        return None;
    }
    pairs.sort_unstable();
    pairs.dedup();
    if pairs.windows(2).any(|w| w[0].0 == w[1].0) {
        return None;
    }

    let mut out = Translated {
        cache_lines: (0..t.cache_lines).map(|_| Box::new(StoreCacheLine::empty())).collect(),
        validations: t.validations.iter().map(|v| v.iter().map(|&x| Cell::new(x)).collect()).collect(),
        direct_buf: t.direct_buf.iter().map(|&x| Cell::new(x)).collect(),
        ..Translated::default()
    };
    for list in &t.resume_points {
        let points: Option<Box<[ResumePoint]>> =
            list.iter().map(|&(o, pc)| Some(ResumePoint { block: direct(o)?, pc })).collect();
        out.resume_points.push(points?);
    }
    for list in &t.frame_lists {
        out.frame_lists.push(list.iter().map(|&o| direct(o)).collect::<Option<Box<[u64]>>>()?);
    }
    for (desc, blocks) in &t.exits {
        let mut d = desc.clone();
        for (l, &o) in d.levels.iter_mut().zip(blocks) {
            // SAFETY: the bits of the Block of a loaded Code of this VM (modules are roots).
            l.block = unsafe { Value::from_bits(direct(o)?) };
        }
        out.exits.push(Box::new(d));
    }
    // Now the boxes are made (the checks' own last, which only the code names): origins in
    // owned memory resolve.
    let resolve_in = |out: &Translated, o: Origin| match o {
        Origin::Owned { kind, index, offset } => owned_addr(out, kind, index as usize).map(|a| a + u64::from(offset)),
        o => direct(o),
    };
    let owned = |o: Origin| resolve_in(&out, o);
    let hoisted = t
        .hoisted
        .iter()
        .map(|h| {
            Some(HoistedCheck::new(
                h.comps.clone(),
                owned(h.path)? as *const Path,
                owned(h.cache)? as *const StoreCacheLine,
                match h.guard {
                    Some(g) => Some(owned(g)?),
                    None => None,
                },
                h.int,
                h.written,
                h.holds_ref,
            ))
        })
        .collect::<Option<Box<[HoistedCheck]>>>()?;
    let assumptions = t.assumptions.iter().map(|(c, o)| Some((c.clone(), owned(*o)?))).collect::<Option<Vec<_>>>()?;
    out.hoisted = hoisted;
    let vm_consts = t.vm_consts.iter().map(|&o| resolve_in(&out, o)).collect::<Option<Vec<_>>>()?;
    out.vm_consts = vm_consts;
    out.assumptions = assumptions;
    let c = t.counts;
    out.inlined_codes = t.inlined_codes.clone();
    out.inlined = c.inlined;
    out.direct_call_sites = c.direct_call_sites;
    out.folded_compares = c.folded_compares;
    out.child_reads = c.child_reads;
    out.record_sites = c.record_sites;
    out.record_batches = c.record_batches;
    out.singleton_tests = c.singleton_tests;
    out.sunk_cells = c.sunk_cells;
    out.region_reentries = c.region_reentries;
    out.bounded_checks = c.bounded_checks;
    out.fused_checks = c.fused_checks;
    out.nested_choices = c.nested_choices;
    out.realized_chains = c.realized_chains;
    out.known_chains = c.known_chains;
    out.retaken_entries = c.retaken_entries;
    out.exit_reserved_slots = c.exit_reserved_slots;
    out.known_choices = c.known_choices;
    out.speculative = c.speculative;
    out.unrolled = c.unrolled;
    out.leaf_copies = c.leaf_copies;
    out.partial_flushes = c.partial_flushes;
    Some(out)
}

/// The value an origin other than owned memory stands for in this VM.
fn resolve(o: Origin, vm: &Vm, found: &[Option<u64>], addrs: EnvAddrs) -> Option<u64> {
    let block = |module: u32, code: u32| vm.module(module)?.blocks.get(code as usize).copied();
    Some(match o {
        Origin::Fixed(x) => x,
        Origin::Block { module, code } => block(module, code)?.to_bits(),
        Origin::BlockField { module, code, offset } => block(module, code)?.as_block_obj()?.as_ptr() as u64 + u64::from(offset),
        Origin::Const { module, code, k } => vm.module(module)?.consts.get(code as usize)?.get(k as usize)?.to_bits(),
        Origin::Store(q) => (*found.get(q as usize)?)?,
        Origin::Path { module, code, k } => {
            let m = vm.module(module)?;
            m.module.codes.get(code as usize)?.paths.get(k as usize)? as *const Path as u64
        }
        Origin::Epoch => addrs.epoch,
        Origin::Writes => addrs.writes,
        Origin::Revalidated => addrs.revalidated?,
        Origin::Clock => addrs.clock?,
        Origin::Owned { .. } => return None,
    })
}

/// The start of box `index` of `kind` in `out`.
fn owned_addr(out: &Translated, kind: Owned, index: usize) -> Option<u64> {
    Some(match kind {
        Owned::CacheLine => &**out.cache_lines.get(index)? as *const StoreCacheLine as u64,
        Owned::ResumePoints => out.resume_points.get(index)?.as_ptr() as u64,
        Owned::Validations => out.validations.get(index)?.as_ptr() as u64,
        Owned::FrameList => out.frame_lists.get(index)?.as_ptr() as u64,
        Owned::Exit => &**out.exits.get(index)? as *const ExitDesc as u64,
        Owned::Superseded => &*out.superseded as *const Cell<u64> as u64,
        Owned::Hoisted => out.hoisted.as_ptr() as u64,
        Owned::SelfEntry => &*out.self_entry as *const Cell<u64> as u64,
        Owned::DirectBuf => out.direct_buf.as_ptr() as u64,
    })
}

/// How many templates the table holds (tests).
pub fn len() -> usize {
    table().count
}
