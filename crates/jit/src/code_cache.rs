//! The process's code cache: machine code generated for a function of one VM, used again by
//! every VM of the process that translates an equal function.
//!
//! Cranelift's code generation is a deterministic function of the function's *stencil* (its
//! IR, with external names as indices into the function's own name table) and of the target
//! ISA's settings. The translator names everything that belongs to one VM (its paths, cache
//! lines, counters, heap Values, the memory a translation allocates) through *VM constants*,
//! external names patched at install (`translate::VM_CONST_NAMESPACE`), and the helpers it
//! calls by their index in the helper table (`translate::HELPER_NAMESPACE`). So two VMs that run the same program translate its Blocks
//! into equal stencils, and the machine code of the first one serves the second: the second
//! installs the same bytes with its own VM constants and its own module's relocations. A
//! `soma test` file makes a VM per test, a benchmark a VM per repeat: without this, each of
//! them pays the whole code generation of every hot Block again (HotSpot's and V8's code
//! caches serve the same purpose across isolates and processes).
//!
//! # Why reuse is never wrong
//! An entry is used only for a stencil *equal* to the one it was generated from (and the same
//! ISA settings): the hash only finds candidates, a collision costs a comparison. Equal
//! stencils give equal machine code, so a hit installs exactly the bytes the VM's own
//! compile would have made. A VM address the translator left in an `iconst` by mistake makes
//! the stencils of two VMs differ: that costs sharing (a miss), never correctness.
//!
//! # Threads
//! One `Mutex` guards the table. Main threads look up before queueing a compile; the compile
//! thread (or a main thread compiling synchronously) inserts what it generated. An entry is
//! plain owned data (IR, bytes, relocation records that name indices, not addresses), read
//! under the lock and copied out: no VM state is reachable from it.
//!
//! # Bounds
//! At most [`MAX_ENTRIES`] entries and about [`MAX_BYTES`] of IR and code; past either, the
//! oldest entries go first.
//!
//! # Codes known to be hot
//! The cache also remembers which Codes (by content) were compiled in this process, and at
//! which tier. A VM that loads a module with such a Code lets it tier up after
//! [`EARLY_TIER_UP`] executions instead of the threshold (`compiler.rs`,
//! `Jit::tier_up_known`): a Code that grew hot in one VM usually does in the next (the same
//! test helper, the same benchmark), and its code is usually one lookup away. A wrong guess
//! costs one translation; the code it gets is right whatever the guess.

use cranelift_codegen::ir;
use soma_runtime::decode::{Code, Const};
use cranelift_codegen::isa::TargetIsa;
use rustc_hash::{FxHashMap, FxHasher};
use std::collections::VecDeque;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex, OnceLock};

/// Machine code of one function, ready to be installed (what code generation makes, and what
/// the cache keeps).
pub struct MachineCode {
    pub bytes: Vec<u8>,
    pub alignment: u64,
    pub relocs: Vec<cranelift_codegen::FinalizedMachReloc>,
    /// Cranelift's VCode listing, when asked for (`SOMA_JIT_DUMP=asm`; never kept).
    pub vcode: Option<String>,
    /// Where the chained loop's header starts in `bytes`, if the code has one
    /// (`loop_align.rs`).
    pub loop_head: Option<u32>,
}

impl MachineCode {
    /// A copy to keep: everything but the listing.
    pub fn to_keep(&self) -> MachineCode {
        MachineCode {
            bytes: self.bytes.clone(),
            alignment: self.alignment,
            relocs: self.relocs.clone(),
            vcode: None,
            loop_head: self.loop_head,
        }
    }
}

/// Most entries kept.
pub const MAX_ENTRIES: usize = 4096;
/// Most bytes kept (estimated: code bytes plus a size per IR instruction).
pub const MAX_BYTES: usize = 64 << 20;
/// What an IR instruction is counted as in [`MAX_BYTES`] (its data, operands, layout node).
const BYTES_PER_INST: usize = 96;

/// Where to look a function up: its ISA's settings and its stencil, hashed.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct CacheKey {
    isa: u64,
    stencil: u64,
}

impl CacheKey {
    /// The key of `func` compiled for the ISA with fingerprint `isa` ([`isa_fingerprint`]).
    pub fn of(isa: u64, func: &ir::Function) -> CacheKey {
        let mut h = FxHasher::default();
        func.stencil.hash(&mut h);
        CacheKey { isa, stencil: h.finish() }
    }

    /// The hash of the function's stencil.
    pub fn stencil(&self) -> u64 {
        self.stencil
    }
}

/// What the code generated for an ISA depends on, besides the function: the target and
/// every setting (the baseline and optimizing tiers differ in them).
pub fn isa_fingerprint(isa: &dyn TargetIsa) -> u64 {
    let mut h = FxHasher::default();
    isa.triple().hash(&mut h);
    isa.flags().hash(&mut h);
    isa.isa_flags_hash_key().hash(&mut h);
    h.finish()
}

struct Entry {
    /// The function as translated (only its stencil is compared).
    func: ir::Function,
    code: Arc<MachineCode>,
    bytes: usize,
}

#[derive(Default)]
struct Table {
    entries: FxHashMap<CacheKey, Vec<Entry>>,
    /// Keys in the order their entries came (a key once per entry).
    order: VecDeque<CacheKey>,
    count: usize,
    bytes: usize,
}

fn table() -> &'static Mutex<Table> {
    static TABLE: OnceLock<Mutex<Table>> = OnceLock::new();
    TABLE.get_or_init(Default::default)
}

fn lock() -> std::sync::MutexGuard<'static, Table> {
    // A thread that panicked while holding the lock left the table consistent (every update
    // below is completed before anything can panic), so its poison is ignored.
    table().lock().unwrap_or_else(|e| e.into_inner())
}

/// The machine code generated for a function with `func`'s stencil under `key`, if any.
pub fn lookup(key: CacheKey, func: &ir::Function) -> Option<Arc<MachineCode>> {
    let t = lock();
    t.entries.get(&key)?.iter().find(|e| e.func.stencil == func.stencil).map(|e| e.code.clone())
}

/// Keep `code`, generated from `func` (as it was before code generation) under `key`.
pub fn insert(key: CacheKey, func: ir::Function, code: &MachineCode) {
    let bytes = code.bytes.len() + func.dfg.num_insts() * BYTES_PER_INST;
    if bytes > MAX_BYTES {
        return;
    }
    let code = Arc::new(code.to_keep());
    let mut t = lock();
    let same = t.entries.entry(key).or_default();
    if same.iter().any(|e| e.func.stencil == func.stencil) {
        return;
    }
    same.push(Entry { func, code, bytes });
    t.order.push_back(key);
    t.count += 1;
    t.bytes += bytes;
    while t.count > MAX_ENTRIES || t.bytes > MAX_BYTES {
        let Some(old) = t.order.pop_front() else { break };
        let Some(list) = t.entries.get_mut(&old) else { continue };
        let gone = list.remove(0);
        if list.is_empty() {
            t.entries.remove(&old);
        }
        t.count -= 1;
        t.bytes -= gone.bytes;
    }
}

/// What installing machine code links against besides the VM's constants: the signature the
/// function is declared with and the external names its relocations index (by
/// `UserExternalNameRef`). A translated function's own, or a template's copy of them: a
/// replay then builds no function (declaring a template's hundred-odd names into one took
/// about a fifth of a replay's time).
#[derive(Clone, Copy)]
pub struct Imports<'a> {
    pub signature: &'a ir::Signature,
    pub names: &'a [ir::UserExternalName],
}

impl<'a> Imports<'a> {
    pub fn of(func: &'a ir::Function) -> Imports<'a> {
        Imports { signature: &func.signature, names: func.params.user_named_funcs().as_values_slice() }
    }
}

/// Executions after which a Code compiled before in the process tiers up in a new VM.
pub const EARLY_TIER_UP: u64 = 2;
/// Most Codes remembered as compiled (past it the memory starts over).
const MAX_KNOWN: usize = 4 * MAX_ENTRIES;

/// Codes compiled in this process, by their content's fingerprint, with the highest tier each
/// was compiled at.
#[derive(Default)]
struct Known {
    by_fingerprint: FxHashMap<u64, u8>,
    count: usize,
}

fn known() -> std::sync::MutexGuard<'static, Known> {
    static KNOWN: OnceLock<Mutex<Known>> = OnceLock::new();
    // Every update below completes before anything can panic: poison is ignored.
    KNOWN.get_or_init(Default::default).lock().unwrap_or_else(|e| e.into_inner())
}

/// A hash of everything a Code does (its instructions, constants, paths): equal Codes of two
/// VMs have equal fingerprints. Not its name nor its instructions' positions: compiled code
/// does not depend on them (an error's `line:col` is looked up when it happens), and a Code
/// copied to another place in a source (a test file's helpers, a program loaded again after
/// an edit above it) is the same Code to the JIT.
pub fn code_fingerprint(code: &Code) -> u64 {
    let mut h = FxHasher::default();
    for i in &code.instrs {
        (i.op as u8, i.operand).hash(&mut h);
    }
    for c in &code.consts {
        match c {
            Const::Int(n) => (0u8, n).hash(&mut h),
            Const::BigInt(n) => (1u8, n).hash(&mut h),
            Const::Str(s) => (2u8, s).hash(&mut h),
            Const::Block(k) => (3u8, k).hash(&mut h),
        }
    }
    for p in &code.paths {
        p.display.hash(&mut h);
    }
    h.finish()
}

/// Everything a Code does, as bytes (what `code_fingerprint` hashes): two Codes translate
/// alike exactly when their images are equal. A fingerprint only says where to look:
/// `code_fingerprint`'s hash collides (two constants of `i64::MIN` hash as two zeros do),
/// which costs the early tier-up a wrong guess, but a replay (`replay.rs`) must know the Code
/// is the same.
pub fn code_image(code: &Code) -> Vec<u8> {
    fn put(out: &mut Vec<u8>, bytes: &[u8]) {
        out.extend_from_slice(&(bytes.len() as u64).to_le_bytes());
        out.extend_from_slice(bytes);
    }
    let mut out = Vec::with_capacity(64 + 5 * code.instrs.len());
    out.extend_from_slice(&(code.instrs.len() as u64).to_le_bytes());
    for i in &code.instrs {
        out.push(i.op as u8);
        out.extend_from_slice(&i.operand.to_le_bytes());
    }
    out.extend_from_slice(&(code.consts.len() as u64).to_le_bytes());
    for c in &code.consts {
        match c {
            Const::Int(n) => {
                out.push(0);
                out.extend_from_slice(&n.to_le_bytes());
            }
            Const::BigInt(n) => {
                out.push(1);
                put(&mut out, &n.to_signed_bytes_le());
            }
            Const::Str(s) => {
                out.push(2);
                put(&mut out, s.as_bytes());
            }
            Const::Block(k) => {
                out.push(3);
                out.extend_from_slice(&k.to_le_bytes());
            }
        }
    }
    out.extend_from_slice(&(code.paths.len() as u64).to_le_bytes());
    for p in &code.paths {
        put(&mut out, p.display.as_bytes());
    }
    out
}

/// Remember that `code` was compiled at `tier`.
pub fn note_compiled(code: &Code, tier: u8) {
    let fp = code_fingerprint(code);
    let mut k = known();
    if k.count >= MAX_KNOWN {
        *k = Known::default();
    }
    match k.by_fingerprint.get_mut(&fp) {
        Some(t) => *t = (*t).max(tier),
        None => {
            k.by_fingerprint.insert(fp, tier);
            k.count += 1;
        }
    }
}

/// The highest tier a Code equal to `code` was compiled at in this process, if it was.
pub fn compiled_tier(code: &Code) -> Option<u8> {
    let fp = code_fingerprint(code);
    known().by_fingerprint.get(&fp).copied()
}

/// How many entries the cache holds (tests).
pub fn len() -> usize {
    lock().count
}

#[cfg(test)]
mod tests {
    use super::*;
    use cranelift_codegen::ir::{types, AbiParam, InstBuilder};
    use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext};

    /// `fn() -> i64 { n }`: functions that differ in one immediate.
    fn returning(n: i64) -> ir::Function {
        let mut func = ir::Function::new();
        func.signature.returns.push(AbiParam::new(types::I64));
        let mut fctx = FunctionBuilderContext::new();
        let mut b = FunctionBuilder::new(&mut func, &mut fctx);
        let entry = b.create_block();
        b.switch_to_block(entry);
        b.seal_block(entry);
        let v = b.ins().iconst(types::I64, n);
        b.ins().return_(&[v]);
        b.finalize(cranelift_codegen::isa::TargetFrontendConfig {
            default_call_conv: cranelift_codegen::isa::CallConv::SystemV,
            pointer_width: target_lexicon::PointerWidth::U64,
            page_size_align_log2: 12,
        });
        func
    }

    fn code(tag: u8) -> MachineCode {
        MachineCode { bytes: vec![tag; 4], alignment: 1, relocs: Vec::new(), vcode: None, loop_head: None }
    }

    // One test: it fills the process's cache, which other tests of this binary do not use.
    #[test]
    fn entries_are_found_only_for_an_equal_function_and_the_oldest_go_first() {
        // An ISA fingerprint no real ISA has (the table is the process's).
        const ISA: u64 = 0x5eed_0000_0000_0001;
        let (a, b) = (returning(1), returning(2));
        let key_a = CacheKey::of(ISA, &a);
        insert(key_a, a.clone(), &code(1));
        assert_eq!(lookup(key_a, &a).map(|c| c.bytes.clone()), Some(vec![1; 4]));
        // Another function under the same key (as a hash collision would put it) is not it.
        assert!(lookup(key_a, &b).is_none());
        // Nor is the same function for another ISA.
        assert!(lookup(CacheKey::of(ISA + 1, &a), &a).is_none());
        // Past the bound, the first entry is the first to go.
        for n in 0..MAX_ENTRIES as i64 {
            let f = returning(1000 + n);
            insert(CacheKey::of(ISA, &f), f, &code(2));
        }
        assert!(len() <= MAX_ENTRIES);
        assert!(lookup(key_a, &a).is_none(), "the oldest entry was evicted");
        let last = returning(1000 + MAX_ENTRIES as i64 - 1);
        assert!(lookup(CacheKey::of(ISA, &last), &last).is_some());
    }

    #[test]
    fn a_code_is_known_by_its_content_not_its_name() {
        use soma_runtime::decode::Instr;
        use soma_runtime::opcodes::Opcode;
        let mut c = Code { name: "block_97_13_".into(), consts: vec![Const::Int(7)], paths: Vec::new(), instrs: Vec::new() };
        c.instrs.push(Instr { op: Opcode::Const, operand: 0, line: 97, col: 13 });
        assert_eq!(compiled_tier(&c), None);
        note_compiled(&c, 2);
        assert_eq!(compiled_tier(&c), Some(2));
        let mut other = Code { name: c.name.clone(), consts: vec![Const::Int(8)], paths: Vec::new(), instrs: c.instrs.clone() };
        assert_eq!(compiled_tier(&other), None, "same name, other constant");
        other.consts[0] = Const::Int(7);
        assert_eq!(compiled_tier(&other), Some(2), "equal content");
    }
}
