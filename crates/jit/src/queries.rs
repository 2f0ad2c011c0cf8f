//! The questions a translation asks of its VM and of the type feedback, and their answers in
//! terms that mean the same in every VM: what a replay (`replay.rs`) asks another VM again.
//! The translator asks through `translate::CodeEnv`, which notes each question here when the
//! compiler wants a template of the translation.

use rustc_hash::FxHashSet;
use soma_runtime::builtins::BuiltinId;
use soma_runtime::decode::Path;
use soma_runtime::value::Value;
use soma_runtime::Vm;

/// What a translation saw at a Store path, in terms that mean the same in every VM.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Seen {
    /// No cell at the path.
    Absent,
    /// A small Int (any: the translator speculates on the kind only).
    SmallInt,
    /// Another immediate: `True`, `Nil`, a double... by its bits.
    Imm(u64),
    /// The Block of Code `code` of `module`.
    Block { module: u32, code: u32 },
    Builtin(BuiltinId),
    /// Another heap value (a Str, a CellRef...): its tag.
    Heap(u8),
}

impl Seen {
    pub fn of(vm: &Vm, v: Option<Value>) -> Seen {
        let Some(v) = v else { return Seen::Absent };
        if v.is_small_int() {
            return Seen::SmallInt;
        }
        if !v.is_heap() {
            return Seen::Imm(v.to_bits());
        }
        if let Some(b) = vm.block_obj(v) {
            return Seen::Block { module: b.module, code: b.code };
        }
        if let Some(p) = v.as_builtin_obj() {
            // SAFETY: builtin objects are VM roots for the VM's whole life.
            return Seen::Builtin(unsafe { (*p.as_ptr()).id });
        }
        Seen::Heap(v.tag().map_or(u8::MAX, |t| t as u8))
    }
}

/// The questions one translation asked, each once, with their answers (see the module docs).
#[derive(Default)]
pub struct QueryLog {
    asked: FxHashSet<*const Path>,
    /// Store path components, the answer, and the value's bits in this VM (for origins).
    pub(crate) stores: Vec<(Vec<String>, Seen, Option<u64>)>,
    /// Codes read, each once, in order.
    pub(crate) codes: Vec<(u32, u32)>,
    code_set: FxHashSet<(u32, u32)>,
    /// Builtin sites and Store paths asked about, with whether feedback made them generic.
    pub(crate) sites: Vec<(u32, u32, usize, bool)>,
    pub(crate) paths: Vec<(Vec<String>, bool)>,
}

impl QueryLog {
    pub fn clear(&mut self) {
        *self = QueryLog::default();
    }

    pub fn store(&mut self, vm: &Vm, path: &Path, v: Option<Value>) {
        if self.asked.insert(path as *const Path) {
            let comps = path.components.iter().map(|c| c.to_string()).collect();
            self.stores.push((comps, Seen::of(vm, v), v.map(Value::to_bits)));
        }
    }

    pub fn code(&mut self, module: u32, code: u32) {
        if self.code_set.insert((module, code)) {
            self.codes.push((module, code));
        }
    }

    pub fn site(&mut self, module: u32, code: u32, pc: usize, wide: bool) {
        if !self.sites.iter().any(|s| (s.0, s.1, s.2) == (module, code, pc)) {
            self.sites.push((module, code, pc, wide));
        }
    }

    pub fn path(&mut self, comps: &[String], wide: bool) {
        if !self.paths.iter().any(|(c, _)| c == comps) {
            self.paths.push((comps.to_vec(), wide));
        }
    }
}

