//! The native cell graph: the Store, Registers and their path operations.
//!
//! Semantics (docs/semantics.md, "Choices", and the reference VM's Store/Register):
//!
//! * **Reads are strict**: a path that was never created is an error (`None` here); a cell
//!   auto-vivified by a deeper write exists and reads as Void.
//! * **Walks follow CellRefs**: when an *intermediate* cell's value is a CellRef, the walk
//!   continues in the referenced cell's children (one hop per cell). The final cell is not
//!   followed.
//! * **Writes auto-vivify** missing cells (value Void) along the path. A value write into a
//!   cell that holds a CellRef, of a value that is not a CellRef, goes through to the
//!   referenced cell (one hop). Writing a CellRef replaces the reference itself.
//! * **`!path.`** with Void deletes the cell and its subtree; the delete walk follows *no*
//!   CellRefs and creates nothing. With any other value it replaces the cell's value (no
//!   write-through) and drops its children.
//! * **Register root**: a Register is one optional root cell `_`, created by the first write or
//!   reference. Every Register path starts at `_`; when `_` holds a CellRef the walk starts in
//!   the referenced cell instead (also when `_` is the whole path), except for deletes.
//!
//! # Structural epoch
//! Compiled code may cache the cell a Store path resolves to and reuse it while
//! [`Graph::epoch`] is unchanged. Cached resolutions come only from [`Graph::store_lookup`],
//! which marks every cell it visits as *walked*, and each cell it went *through* (searched
//! the children of, or followed the CellRef of: every cell but the one it resolved to, unless
//! that one was also passed through) as *walked through*; the flags stay until the cell is
//! swept. The epoch is bumped whenever a cached walk could resolve differently or a cached
//! cell could die:
//! 1. a walked cell is unlinked from its parent (delete), or a walked Register root is
//!    deleted;
//! 2. a walked-through cell's children are dropped (replace), or its value changes *to, from
//!    or between* CellRefs (walks route through CellRefs).
//!
//! A change to a cell no Store lookup ever visited cannot alter any cached resolution (a
//! resolution depends only on the children and values of the cells its walk went through, and
//! an unlinked subtree can hold a cached cell only if the walk to it visited the unlinked
//! root), so such changes, e.g. context passing (`_. !_.`) between Register frames, keep
//! every cache valid. Nor can a new value or dropped children of a cell that lookups only
//! resolved *to*: e.g. `d >dict.put !d.`, which replaces the CellRef in the Store cell `d`
//! on every insert, keeps every cache (including the one for `d` itself).
//!
//! Creating cells does not bump it: an existing resolution stays valid (only "not found"
//! results would change, and those are never cached). Plain value writes do not bump it, so
//! counters and accumulators in the Store keep their caches. The counter is global (Store and
//! Register cells) because a CellRef can link the two graphs.
//!
//! # Guarded cells
//! Speculative code assumes of some Store paths that they keep their value: a builtin, a
//! Block, a constant it inlined or specialised on (a *guard*). Its pre-header marks their
//! cells *guarded* ([`Graph::guard_cell`]), and every change of a guarded cell's value moves
//! the epoch. So while the epoch stands, no guarded cell changed: after a call that wrote
//! cells, speculative code re-checks only the values it holds of unguarded paths (counters,
//! accumulators), not every guard (docs/jit.md, "Calls of Blocks that write cells"). Marking
//! a cell that speculative code may hold already (a watched cell, see "Write counter") moves
//! the epoch too, so that no code goes on storing into a cell it validated as unguarded (its
//! next check sees the epoch moved and validates again; a path it writes that another code
//! guards fails that validation). An unwatched cell no speculative code holds. Rebinding a
//! builtin or a Block is rare; when it happens, every cache resolves again once.
//!
//! # Write counter
//! [`Graph::writes`] counts every change of the value of a *watched* cell: one whose value
//! some speculative code may hold across a call (its pre-header, `jit_validate`, marks every
//! cell it resolves with `CellPtr::set_watched`; the mark stays until the cell is recycled).
//! Optimized code that keeps Store values in registers across a call compares the counter
//! before and after: unchanged, none of the cells it holds was written, so every value it
//! holds is still the cell's (docs/jit.md, "Speculative code"). Writes to other cells, such
//! as a callee's Register cells, do not count, so calling a Block that uses its Register does
//! not make the caller's code leave. A write through a CellRef counts when its target is
//! watched (Store and Register cells share the counter: a CellRef can link the two graphs).
//! Compiled code that writes a cell inline counts its write (baseline code counts every such
//! write, which can only count too often). The counter is only ever compared for equality, so
//! what it must do is move: speculative code counts the writes whose stores it defers (its
//! "sunk" writes) as one, where it makes them.

use crate::cell::{CellPtr, Name};
use crate::heap::Heap;
use crate::sym::Sym;
use crate::value::Value;

/// The Store (a persistent root cell) and the structural epoch shared by all cells.
pub struct Graph {
    store_root: CellPtr,
    epoch: u64,
    /// Cell value writes so far (see "Write counter").
    writes: u64,
}

/// The cell a CellRef held by `c` names, or `c` itself (one hop).
#[inline]
fn follow(c: CellPtr) -> CellPtr {
    c.value().as_cell().unwrap_or(c)
}

/// [`walk_existing`] that marks every visited cell as walked (for cacheable resolutions).
fn walk_marking<S: Name>(start: CellPtr, path: &[S]) -> Option<CellPtr> {
    let (last, init) = path.split_last()?;
    let mut cur = start;
    cur.set_walked_through();
    for comp in init {
        let next = cur.child_sym(comp.find_sym()?)?;
        next.set_walked_through();
        cur = follow(next);
        cur.set_walked_through();
    }
    let found = cur.child_sym(last.find_sym()?)?;
    found.set_walked();
    Some(found)
}

/// Strict lookup from `start`'s children, following CellRefs held by intermediate cells.
fn walk_existing<S: Name>(start: CellPtr, path: &[S]) -> Option<CellPtr> {
    let (last, init) = path.split_last()?;
    let mut cur = start;
    for comp in init {
        cur = follow(cur.child_sym(comp.find_sym()?)?);
    }
    cur.child_sym(last.find_sym()?)
}

/// A new child `name` (Void, no children) of `parent`, which has no child of that name.
#[inline]
fn new_child(heap: &mut Heap, parent: CellPtr, name: Sym) -> CellPtr {
    let c = heap.alloc_cell();
    parent.insert_child_sym(name, c);
    c
}

/// Lookup from `start`'s children that creates missing cells (Void), following CellRefs held
/// by intermediate cells. `path` must not be empty.
///
/// Once a component is missing, every cell below it is new (Void, childless: nothing to
/// follow, nothing to find), so the rest of the path is created without lookups.
#[inline]
fn walk_create<S: Name>(heap: &mut Heap, start: CellPtr, path: &[S]) -> CellPtr {
    let Some((last, init)) = path.split_last() else {
        return start;
    };
    let mut cur = start;
    let mut rest = init.iter();
    while let Some(comp) = rest.next() {
        let name = comp.sym();
        match cur.child_sym(name) {
            Some(next) => cur = follow(next),
            None => {
                let mut c = new_child(heap, cur, name);
                for comp in rest {
                    c = new_child(heap, c, comp.sym());
                }
                return new_child(heap, c, last.sym());
            }
        }
    }
    let name = last.sym();
    match cur.child_sym(name) {
        Some(c) => c,
        None => new_child(heap, cur, name),
    }
}

/// Unlink the cell at `path` below `start`, walking raw children (no CellRef following, no
/// creation). Returns the removed cell.
fn delete_raw<S: Name>(start: CellPtr, path: &[S]) -> Option<CellPtr> {
    let (last, init) = path.split_last()?;
    let mut cur = start;
    for comp in init {
        match comp.find_sym().and_then(|s| cur.child_sym(s)) {
            Some(c) => cur = c,
            None => return None,
        }
    }
    let removed = cur.child_sym(last.find_sym()?)?;
    cur.remove_child(last);
    Some(removed)
}

impl Graph {
    /// An empty Store (the VM installs the builtins).
    pub fn new(heap: &mut Heap) -> Graph {
        Graph {
            store_root: heap.alloc_cell(),
            epoch: 0,
            writes: 0,
        }
    }

    /// The Store's root cell (its children are the top-level names). A GC root.
    pub fn store_root(&self) -> CellPtr {
        self.store_root
    }

    /// A Store path (`a.b.c`) whose cell holds `v`, searched breadth first over at most
    /// `budget` cells, so shallower paths win and a big Store costs no more than the budget.
    /// For names in diagnostics (the JIT's dumps and perf map), never for semantics: a value
    /// can be held by several paths or by none within the budget.
    pub fn store_path_of(&self, v: Value, mut budget: usize) -> Option<String> {
        let mut queue = std::collections::VecDeque::new();
        queue.push_back((self.store_root, String::new()));
        while let Some((cell, path)) = queue.pop_front() {
            for (name, child) in cell.children() {
                if budget == 0 {
                    return None;
                }
                budget -= 1;
                let child_path = if path.is_empty() {
                    name.as_str().to_string()
                } else {
                    format!("{path}.{}", name.as_str())
                };
                if child.value().to_bits() == v.to_bits() {
                    return Some(child_path);
                }
                queue.push_back((child, child_path));
            }
        }
        None
    }

    /// The structural epoch (see the module documentation).
    #[inline]
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// Address of the epoch counter, for JIT guards that load it inline. Stable for the
    /// graph's life as long as the graph is not moved (a `Vm` is always boxed).
    pub fn epoch_ptr(&self) -> *const u64 {
        &self.epoch
    }

    /// Cell value writes so far (see the module documentation).
    pub fn writes(&self) -> u64 {
        self.writes
    }

    /// Address of the write counter, for compiled code (stable as the epoch's is).
    pub fn writes_ptr(&self) -> *const u64 {
        &self.writes
    }

    #[inline]
    fn bump(&mut self) {
        self.epoch = self.epoch.wrapping_add(1);
    }

    /// Mark `cell` guarded (see "Guarded cells"). When it was not, and speculative code may
    /// hold it already (it is watched), the epoch moves.
    pub fn guard_cell(&mut self, cell: CellPtr) {
        if !cell.guarded() {
            cell.set_guarded();
            if cell.watched() {
                self.bump();
            }
        }
    }

    /// Set a cell's value, bumping the epoch when a CellRef is involved (rule 2) or the cell
    /// is guarded.
    #[inline]
    fn set_tracked(&mut self, cell: CellPtr, v: Value) {
        if cell.guarded() || (cell.walked_through() && (v.is_cell_ref() || cell.value().is_cell_ref())) {
            self.bump();
        }
        if cell.watched() {
            self.writes = self.writes.wrapping_add(1);
        }
        cell.set_value(v);
    }

    /// `!path` on a resolved cell: write-through when the cell holds a CellRef and `v` is not
    /// one, else a plain write.
    pub fn write_cell(&mut self, cell: CellPtr, v: Value) {
        match cell.value().as_cell() {
            Some(target) if !v.is_cell_ref() => self.set_tracked(target, v),
            _ => self.set_tracked(cell, v),
        }
    }

    /// `!path.` with a non-Void value on a resolved cell: replace the value, drop the children.
    pub fn replace_cell(&mut self, cell: CellPtr, v: Value) {
        self.set_tracked(cell, v);
        if cell.clear_children() && cell.walked_through() {
            self.bump();
        }
    }

    // ----- Store -----

    /// The Store cell at `path`, if it was ever created.
    /// Marks the cells it visits as walked: the result may be cached under the epoch.
    pub fn store_lookup<S: Name>(&self, path: &[S]) -> Option<CellPtr> {
        walk_marking(self.store_root, path)
    }

    /// Value of the Store cell at `path`; `None` when it was never created.
    pub fn store_read<S: Name>(&self, path: &[S]) -> Option<Value> {
        walk_existing(self.store_root, path).map(CellPtr::value)
    }

    /// The Store cell at `path`, created (with parents) if needed. `path` must not be empty.
    pub fn store_ref<S: Name>(&mut self, heap: &mut Heap, path: &[S]) -> CellPtr {
        assert!(!path.is_empty(), "a Store path has at least one component");
        walk_create(heap, self.store_root, path)
    }

    pub fn store_write<S: Name>(&mut self, heap: &mut Heap, path: &[S], v: Value) {
        let cell = self.store_ref(heap, path);
        self.write_cell(cell, v);
    }

    pub fn store_setref<S: Name>(&mut self, heap: &mut Heap, path: &[S], v: Value) {
        if v.is_void() {
            if delete_raw(self.store_root, path).is_some_and(|c| c.walked()) {
                self.bump();
            }
        } else {
            let cell = self.store_ref(heap, path);
            self.replace_cell(cell, v);
        }
    }

    // ----- Register (`reg` is the frame's optional root cell `_`; paths exclude the `_`) -----

    /// The cell at `path` below `start`'s children (following CellRefs held by intermediate
    /// cells, as every read does), if it exists. `path` must not be empty.
    pub fn lookup_below<S: Name>(start: CellPtr, path: &[S]) -> Option<CellPtr> {
        walk_existing(start, path)
    }

    /// The Register cell at `path` (`[]` is `_` itself), if it was ever created.
    pub fn reg_lookup<S: Name>(reg: Option<CellPtr>, path: &[S]) -> Option<CellPtr> {
        let root = follow(reg?);
        if path.is_empty() {
            Some(root)
        } else {
            walk_existing(root, path)
        }
    }

    pub fn reg_read<S: Name>(reg: Option<CellPtr>, path: &[S]) -> Option<Value> {
        Graph::reg_lookup(reg, path).map(CellPtr::value)
    }

    /// The Register cell at `path`, created (with `_` and parents) if needed.
    pub fn reg_ref<S: Name>(
        &mut self,
        heap: &mut Heap,
        reg: &mut Option<CellPtr>,
        path: &[S],
    ) -> CellPtr {
        let root = *reg.get_or_insert_with(|| heap.alloc_cell());
        let root = follow(root);
        if path.is_empty() {
            root
        } else {
            walk_create(heap, root, path)
        }
    }

    pub fn reg_write<S: Name>(
        &mut self,
        heap: &mut Heap,
        reg: &mut Option<CellPtr>,
        path: &[S],
        v: Value,
    ) {
        let cell = self.reg_ref(heap, reg, path);
        self.write_cell(cell, v);
    }

    pub fn reg_setref<S: Name>(
        &mut self,
        heap: &mut Heap,
        reg: &mut Option<CellPtr>,
        path: &[S],
        v: Value,
    ) {
        if v.is_void() {
            let removed = match (*reg, path.is_empty()) {
                (None, _) => false,
                (Some(root), true) => {
                    *reg = None;
                    root.walked()
                }
                // Deletes do not follow a CellRef held by `_`.
                (Some(root), false) => delete_raw(root, path).is_some_and(|c| c.walked()),
            };
            if removed {
                self.bump();
            }
        } else {
            let cell = self.reg_ref(heap, reg, path);
            self.replace_cell(cell, v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn int(i: i64) -> Value {
        Value::small_int(i).unwrap()
    }

    #[test]
    fn a_value_is_named_by_its_shallowest_store_path_within_the_budget() {
        let mut heap = Heap::new();
        let mut g = Graph::new(&mut heap);
        g.store_write(&mut heap, &["a", "b", "c"], int(7));
        g.store_write(&mut heap, &["z"], int(7));
        g.store_write(&mut heap, &["a", "q"], int(8));
        assert_eq!(g.store_path_of(int(7), 100).as_deref(), Some("z"), "shallower first");
        assert_eq!(g.store_path_of(int(8), 100).as_deref(), Some("a.q"));
        assert_eq!(g.store_path_of(int(9), 100), None);
        // `a`, `z`, `a.b`, then `a.q`: the fourth cell looked at.
        assert_eq!(g.store_path_of(int(8), 4).as_deref(), Some("a.q"));
        assert_eq!(g.store_path_of(int(8), 3), None, "past the budget");
    }

    #[test]
    fn strict_reads_and_auto_vivified_void() {
        let mut heap = Heap::new();
        let mut g = Graph::new(&mut heap);
        assert_eq!(g.store_read(&["a"]), None);
        g.store_write(&mut heap, &["a", "b", "c"], int(42));
        assert_eq!(g.store_read(&["a", "b", "c"]), Some(int(42)));
        assert_eq!(g.store_read(&["a"]), Some(Value::VOID));
        assert_eq!(g.store_read(&["a", "b"]), Some(Value::VOID));
        assert_eq!(g.store_read(&["a", "x"]), None);
        assert_eq!(g.store_read(&["a", "b", "c", "d"]), None);
    }

    #[test]
    fn write_through_cell_ref_one_hop() {
        let mut heap = Heap::new();
        let mut g = Graph::new(&mut heap);
        g.store_write(&mut heap, &["x"], int(1));
        let x = g.store_ref(&mut heap, &["x"]);
        g.store_write(&mut heap, &["r"], x.as_value());
        g.store_write(&mut heap, &["r"], int(5));
        assert_eq!(g.store_read(&["x"]), Some(int(5)), "written through");
        assert_eq!(g.store_read(&["r"]), Some(x.as_value()), "ref kept");
        // Writing a CellRef replaces the reference itself.
        let y = g.store_ref(&mut heap, &["y"]);
        g.store_write(&mut heap, &["r"], y.as_value());
        assert_eq!(g.store_read(&["r"]), Some(y.as_value()));
        assert_eq!(g.store_read(&["x"]), Some(int(5)));
        // Only one hop: r -> y, y -> x; writing r writes y's value (replacing y's ref).
        g.store_write(&mut heap, &["y"], x.as_value());
        g.store_write(&mut heap, &["r"], int(9));
        assert_eq!(g.store_read(&["y"]), Some(int(9)));
        assert_eq!(g.store_read(&["x"]), Some(int(5)));
    }

    #[test]
    fn walks_follow_refs_held_by_intermediate_cells() {
        let mut heap = Heap::new();
        let mut g = Graph::new(&mut heap);
        g.store_write(&mut heap, &["data", "x"], int(42));
        let data = g.store_ref(&mut heap, &["data"]);
        g.store_write(&mut heap, &["ref"], data.as_value());
        assert_eq!(g.store_read(&["ref", "x"]), Some(int(42)));
        g.store_write(&mut heap, &["ref", "y"], int(99));
        assert_eq!(g.store_read(&["data", "y"]), Some(int(99)));
        // Delete does not follow: ref has no raw child y.
        let epoch = g.epoch();
        g.store_setref(&mut heap, &["ref", "y"], Value::VOID);
        assert_eq!(g.store_read(&["data", "y"]), Some(int(99)));
        assert_eq!(g.epoch(), epoch, "nothing removed, no bump");
        assert!(g.store_lookup(&["data", "y"]).is_some(), "a cacheable lookup visits data.y");
        g.store_setref(&mut heap, &["data", "y"], Value::VOID);
        assert_eq!(g.store_read(&["data", "y"]), None);
        assert!(g.epoch() > epoch);
    }

    #[test]
    fn setref_replaces_and_drops_children_without_write_through() {
        let mut heap = Heap::new();
        let mut g = Graph::new(&mut heap);
        g.store_write(&mut heap, &["a", "b"], int(1));
        let target = g.store_ref(&mut heap, &["t"]);
        g.store_write(&mut heap, &["a"], target.as_value());
        g.store_setref(&mut heap, &["a"], int(7));
        assert_eq!(g.store_read(&["a"]), Some(int(7)));
        assert_eq!(g.store_read(&["t"]), Some(Value::VOID), "no write-through");
        assert_eq!(g.store_read(&["a", "b"]), None, "children dropped");
        g.store_setref(&mut heap, &["a"], Value::VOID);
        assert_eq!(g.store_read(&["a"]), None, "deleted");
        // Deleting a missing path creates nothing.
        g.store_setref(&mut heap, &["m", "n"], Value::VOID);
        assert_eq!(g.store_read(&["m"]), None);
    }

    #[test]
    fn register_root_is_lazy_and_followed_when_it_holds_a_ref() {
        let mut heap = Heap::new();
        let mut g = Graph::new(&mut heap);
        let mut reg: Option<CellPtr> = None;
        assert_eq!(Graph::reg_read(reg, &[] as &[&str]), None, "`_` before any write");
        assert_eq!(Graph::reg_read(reg, &["x"]), None);
        // Context passing: an outer register cell, passed as a ref and stored with `!_.`.
        let mut outer: Option<CellPtr> = None;
        g.reg_write(&mut heap, &mut outer, &["n"], int(3));
        let outer_root = g.reg_ref(&mut heap, &mut outer, &[] as &[&str]);
        g.reg_setref(&mut heap, &mut reg, &[] as &[&str], outer_root.as_value());
        assert_eq!(Graph::reg_read(reg, &["n"]), Some(int(3)));
        g.reg_write(&mut heap, &mut reg, &["m"], int(4));
        assert_eq!(Graph::reg_read(outer, &["m"]), Some(int(4)));
        // `_` alone reads the followed cell.
        assert_eq!(Graph::reg_read(reg, &[] as &[&str]), Some(Value::VOID));
        // `!_` with a non-ref writes the followed cell's value (and its CellRef rule).
        g.reg_write(&mut heap, &mut reg, &[] as &[&str], int(8));
        assert_eq!(Graph::reg_read(outer, &[] as &[&str]), Some(int(8)));
        // `!_.` Void deletes the whole root.
        g.reg_setref(&mut heap, &mut reg, &[] as &[&str], Value::VOID);
        assert_eq!(reg, None);
        assert_eq!(Graph::reg_read(reg, &["n"]), None);
    }

    #[test]
    fn register_delete_does_not_follow_root_ref() {
        let mut heap = Heap::new();
        let mut g = Graph::new(&mut heap);
        let mut outer: Option<CellPtr> = None;
        g.reg_write(&mut heap, &mut outer, &["n"], int(3));
        let outer_root = g.reg_ref(&mut heap, &mut outer, &[] as &[&str]);
        let mut reg: Option<CellPtr> = None;
        g.reg_setref(&mut heap, &mut reg, &[] as &[&str], outer_root.as_value());
        g.reg_setref(&mut heap, &mut reg, &["n"], Value::VOID);
        assert_eq!(Graph::reg_read(outer, &["n"]), Some(int(3)), "raw walk: `_` has no child n");
    }

    #[test]
    fn epoch_rules() {
        let mut heap = Heap::new();
        let mut g = Graph::new(&mut heap);
        let e0 = g.epoch();
        g.store_write(&mut heap, &["a", "b"], int(1));
        g.store_write(&mut heap, &["a", "b"], int(2));
        assert_eq!(g.epoch(), e0, "creation and plain writes keep caches");
        // Only cells a (cacheable) lookup visited count.
        let c = g.store_ref(&mut heap, &["c"]);
        g.store_write(&mut heap, &["a"], c.as_value());
        g.store_setref(&mut heap, &["a"], int(0));
        assert_eq!(g.epoch(), e0, "no lookup visited `a`: no cache can depend on it");
        g.store_write(&mut heap, &["a", "b"], int(2));
        assert!(g.store_lookup(&["a", "b"]).is_some());
        g.store_write(&mut heap, &["a"], c.as_value());
        let e1 = g.epoch();
        assert!(e1 > e0, "installing a CellRef reroutes walks");
        g.store_setref(&mut heap, &["a"], int(0));
        assert!(g.epoch() > e1, "replacing a CellRef / dropping children");
        let e2 = g.epoch();
        g.store_setref(&mut heap, &["c"], int(5));
        assert_eq!(g.epoch(), e2, "replace of a childless plain cell");
        // A cell lookups only resolved to: its value and children are not part of any cached
        // resolution (`d >dict.put !d.`), but unlinking it is.
        g.store_write(&mut heap, &["d", "k"], int(1));
        let d = g.store_lookup(&["d"]).unwrap();
        g.store_setref(&mut heap, &["d"], c.as_value());
        g.store_write(&mut heap, &["d"], d.as_value());
        assert_eq!(g.epoch(), e2, "replacing the value / children of a resolved-only cell");
        assert_eq!(g.store_lookup(&["d"]), Some(d));
        g.store_setref(&mut heap, &["d"], Value::VOID);
        assert!(g.epoch() > e2, "unlinking a cached cell");
    }

    // ----- model-based property test -----

    /// A deliberately simple model of the semantics: cells in an arena, children as a list.
    mod model {
        #[derive(Clone, Copy, PartialEq, Eq, Debug)]
        pub enum MVal {
            Void,
            Int(i64),
            Ref(usize),
        }
        pub struct Model {
            pub value: Vec<MVal>,
            pub kids: Vec<Vec<(String, usize)>>,
            pub store: usize,
            pub reg: Option<usize>,
        }
        impl Model {
            pub fn new() -> Model {
                let mut m = Model { value: vec![], kids: vec![], store: 0, reg: None };
                m.store = m.new_cell();
                m
            }
            fn new_cell(&mut self) -> usize {
                self.value.push(MVal::Void);
                self.kids.push(vec![]);
                self.value.len() - 1
            }
            fn child(&self, c: usize, k: &str) -> Option<usize> {
                self.kids[c].iter().find(|(n, _)| n == k).map(|(_, c)| *c)
            }
            fn deref(&self, c: usize) -> usize {
                match self.value[c] {
                    MVal::Ref(t) => t,
                    _ => c,
                }
            }
            fn get(&mut self, start: usize, path: &[&str], create: bool) -> Option<usize> {
                let mut cur = start;
                for (i, k) in path.iter().enumerate() {
                    let next = match self.child(cur, k) {
                        Some(c) => c,
                        None if create => {
                            let c = self.new_cell();
                            self.kids[cur].push((k.to_string(), c));
                            c
                        }
                        None => return None,
                    };
                    cur = if i + 1 < path.len() { self.deref(next) } else { next };
                }
                Some(cur)
            }
            pub fn resolve(&mut self, reg: bool, path: &[&str], create: bool) -> Option<usize> {
                if reg {
                    if self.reg.is_none() {
                        if !create {
                            return None;
                        }
                        self.reg = Some(self.new_cell());
                    }
                    let root = self.deref(self.reg.unwrap());
                    if path.is_empty() {
                        Some(root)
                    } else {
                        self.get(root, path, create)
                    }
                } else {
                    let s = self.store;
                    self.get(s, path, create)
                }
            }
            pub fn write(&mut self, reg: bool, path: &[&str], v: MVal) {
                let c = self.resolve(reg, path, true).unwrap();
                match (self.value[c], v) {
                    (MVal::Ref(t), v) if !matches!(v, MVal::Ref(_)) => self.value[t] = v,
                    _ => self.value[c] = v,
                }
            }
            pub fn setref(&mut self, reg: bool, path: &[&str], v: MVal) {
                if v == MVal::Void {
                    let start = if reg {
                        match self.reg {
                            None => return,
                            Some(r) if path.is_empty() => {
                                let _ = r;
                                self.reg = None;
                                return;
                            }
                            Some(r) => r,
                        }
                    } else {
                        self.store
                    };
                    let mut cur = start;
                    for k in &path[..path.len() - 1] {
                        match self.child(cur, k) {
                            Some(c) => cur = c,
                            None => return,
                        }
                    }
                    let last = path[path.len() - 1];
                    self.kids[cur].retain(|(n, _)| n != last);
                } else {
                    let c = self.resolve(reg, path, true).unwrap();
                    self.value[c] = v;
                    self.kids[c].clear();
                }
            }
        }
    }

    use model::{MVal, Model};
    use proptest::prelude::*;
    use std::collections::HashMap;

    #[derive(Clone, Debug)]
    enum Op {
        Read(bool, Vec<&'static str>),
        Ref(bool, Vec<&'static str>),
        WriteInt(bool, Vec<&'static str>, i64),
        WriteRef(bool, Vec<&'static str>, usize),
        SetRefInt(bool, Vec<&'static str>, i64),
        SetRefRef(bool, Vec<&'static str>, usize),
        Delete(bool, Vec<&'static str>),
        /// A full collection with the Store, the Register and every ref taken so far as
        /// roots: reachable cells must survive it (valgrind catches any use after free).
        Collect,
    }

    fn path_strategy() -> impl Strategy<Value = (bool, Vec<&'static str>)> {
        (any::<bool>(), prop::collection::vec(prop::sample::select(vec!["a", "b", "c"]), 0..4))
            .prop_map(|(reg, p)| {
                if !reg && p.is_empty() {
                    (false, vec!["a"])
                } else {
                    (reg, p)
                }
            })
    }

    fn op_strategy() -> impl Strategy<Value = Op> {
        (path_strategy(), 0u8..8, -3i64..4, 0usize..16).prop_map(|((reg, p), kind, i, r)| match kind {
            0 => Op::Read(reg, p),
            1 => Op::Ref(reg, p),
            2 => Op::WriteInt(reg, p, i),
            3 => Op::WriteRef(reg, p, r),
            4 => Op::SetRefInt(reg, p, i),
            5 => Op::SetRefRef(reg, p, r),
            6 => Op::Delete(reg, p),
            _ => Op::Collect,
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]
        #[test]
        fn graph_agrees_with_model(ops in prop::collection::vec(op_strategy(), 1..60)) {
            let mut heap = Heap::new();
            let mut g = Graph::new(&mut heap);
            let mut reg: Option<CellPtr> = None;
            let mut m = Model::new();
            // Refs taken so far: (model cell, native cell); values are compared through it.
            let mut refs: Vec<(usize, CellPtr)> = Vec::new();
            let mut to_model: HashMap<CellPtr, usize> = HashMap::new();
            // Store resolutions cached under the epoch, as compiled code caches them.
            let mut cache: Vec<(Vec<&'static str>, u64, CellPtr)> = Vec::new();
            let conv = |v: Value, to_model: &HashMap<CellPtr, usize>| -> MVal {
                if v.is_void() { MVal::Void }
                else if let Some(i) = v.as_small_int() { MVal::Int(i) }
                else { MVal::Ref(to_model[&v.as_cell().unwrap()]) }
            };
            for op in ops {
                match op {
                    Op::Read(r, p) => {
                        if !r {
                            if let Some(c) = g.store_lookup(&p) {
                                cache.push((p.clone(), g.epoch(), c));
                            }
                        }
                        let native = if r { Graph::reg_read(reg, &p) } else { g.store_read(&p) };
                        let model = m.resolve(r, &p, false).map(|c| m.value[c]);
                        prop_assert_eq!(native.map(|v| conv(v, &to_model)), model);
                    }
                    Op::Ref(r, p) => {
                        let n = if r { g.reg_ref(&mut heap, &mut reg, &p) } else { g.store_ref(&mut heap, &p) };
                        let mc = m.resolve(r, &p, true).unwrap();
                        if let Some(&known) = to_model.get(&n) {
                            prop_assert_eq!(known, mc, "same native cell, same model cell");
                        }
                        to_model.insert(n, mc);
                        refs.push((mc, n));
                    }
                    Op::WriteInt(r, p, i) => {
                        let v = Value::small_int(i).unwrap();
                        if r { g.reg_write(&mut heap, &mut reg, &p, v) } else { g.store_write(&mut heap, &p, v) }
                        m.write(r, &p, MVal::Int(i));
                    }
                    Op::WriteRef(r, p, k) | Op::SetRefRef(r, p, k) if refs.is_empty() => {
                        let _ = (r, p, k);
                    }
                    Op::WriteRef(r, p, k) => {
                        let (mc, n) = refs[k % refs.len()];
                        if r { g.reg_write(&mut heap, &mut reg, &p, n.as_value()) } else { g.store_write(&mut heap, &p, n.as_value()) }
                        m.write(r, &p, MVal::Ref(mc));
                    }
                    Op::SetRefInt(r, p, i) => {
                        let v = Value::small_int(i).unwrap();
                        if r { g.reg_setref(&mut heap, &mut reg, &p, v) } else { g.store_setref(&mut heap, &p, v) }
                        m.setref(r, &p, MVal::Int(i));
                    }
                    Op::SetRefRef(r, p, k) => {
                        let (mc, n) = refs[k % refs.len()];
                        if r { g.reg_setref(&mut heap, &mut reg, &p, n.as_value()) } else { g.store_setref(&mut heap, &p, n.as_value()) }
                        m.setref(r, &p, MVal::Ref(mc));
                    }
                    Op::Delete(r, p) => {
                        if r { g.reg_setref(&mut heap, &mut reg, &p, Value::VOID) } else { g.store_setref(&mut heap, &p, Value::VOID) }
                        m.setref(r, &p, MVal::Void);
                    }
                    Op::Collect => {
                        heap.mark_cell(g.store_root());
                        if let Some(r) = reg {
                            heap.mark_cell(r);
                        }
                        for &(_, n) in &refs {
                            heap.mark_cell(n);
                        }
                        heap.trace();
                        heap.sweep();
                    }
                }
                // Every cache line whose epoch is current still names the right cell.
                let epoch = g.epoch();
                cache.retain(|(_, e, _)| *e == epoch);
                for (p, _, c) in &cache {
                    prop_assert_eq!(g.store_lookup(p), Some(*c), "stale cache for {:?}", p);
                }
            }
        }
    }
}
