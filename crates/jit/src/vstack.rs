//! Translation state: the virtual AL.
//!
//! Compiled code keeps the values a Code pushes in SSA values for as long as it can. The
//! virtual stack models the top of the real AL: at any point the executor's AL equals the real
//! AL followed by the virtual entries, bottom first. Before a helper that can observe the AL
//! or collect garbage (a safepoint), the translator flushes the virtual entries to the real AL,
//! which also makes them GC roots; before an error exit it flushes what the executor would
//! still have on the AL. Helpers that neither collect nor touch the AL (value-form reads, Int
//! slow paths, compares) run with values still virtual.
//!
//! An entry is a value held in SSA ([`VValue`], with what the translation knows of it), or a
//! CellRef to a virtual Register that has no cell yet ([`VEntry::RegisterRoot`]): the two
//! cannot be mixed up, since only the first has bits.
//!
//! Values held only virtually are never collected early: they are either permanent roots
//! (constants, Blocks, builtins), immediates, or were read from a cell / produced by a helper
//! since the last safepoint, and every safepoint is preceded by a flush.

use cranelift_codegen::ir;
use soma_runtime::Value;

/// One virtual AL slot.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum VEntry {
    /// A value held in SSA.
    Value(VValue),
    /// A CellRef to the Register root of translation level `n` (`_.` of a virtual Register):
    /// no cell exists yet, so there are no bits. Consumed by an inlined `!_.` (and by `isNil`
    /// and `isVoid`, which need no bits to know a CellRef is neither); anywhere else
    /// the translation bails out, except on error and deoptimisation paths, which materialise
    /// the Register first.
    RegisterRoot(usize),
}

impl VEntry {
    pub fn new(val: ir::Value, konst: Option<u64>) -> VEntry {
        VEntry::Value(VValue::new(val, konst))
    }

    /// The value, unless this is a virtual Register's root.
    pub fn value(&self) -> Option<&VValue> {
        match self {
            VEntry::Value(v) => Some(v),
            VEntry::RegisterRoot(_) => None,
        }
    }

    /// The level whose virtual Register root this is.
    pub fn register_root(&self) -> Option<usize> {
        match *self {
            VEntry::RegisterRoot(level) => Some(level),
            VEntry::Value(_) => None,
        }
    }

    /// The bits known at compile time (never for a Register root).
    pub fn konst(&self) -> Option<u64> {
        self.value().and_then(|v| v.konst)
    }
}

/// A value on the virtual AL: its bits, and what the translation knows of them.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct VValue {
    /// The value's bits (an `i64` SSA value).
    pub val: ir::Value,
    /// The bits when known at compile time (constants, `>block`).
    pub konst: Option<u64>,
    /// A `choose` between two known values: (the condition's truth as an `i8`, the value when
    /// true, the value when false). Executing it can branch to two known Blocks.
    pub choice: Option<(ir::Value, u64, u64)>,
    /// A `choose` between two [`ChoiceArm`]s, at least one of them itself a `choice` (bst's
    /// `_.lt L  _.gt R H >choose  >choose`): (the outer condition's truth, the arm when true,
    /// the arm when false). Executing it can branch three ways to known Blocks.
    pub nested: Option<(ir::Value, ChoiceArm, ChoiceArm)>,
    /// A value known at compile time this entry may hold (one arm of a `choose`): a chained
    /// Block ending with itself on top is recognised by it (`Translator::finish_body`).
    pub may_be: Option<u64>,
    /// The value is a small Int and this is its integer (an `i64`): arithmetic and compares
    /// on it need no tag test, and `val` (its boxed form) is dead code unless it escapes.
    pub int: Option<ir::Value>,
    /// The value is `True` or `False` and this is its truth (an `i8`): `choose` and a chained
    /// round branch on it directly.
    pub truth: Option<ir::Value>,
    /// The value is `True` or `False` by a relation between two small Ints (`truth` is its
    /// compare): `not`, `and`, `or` and `choose` between such values of the same two Ints are
    /// one compare again (the stdlib's `==`, which is `=!` negated, `=!` being `<` one way or
    /// the other, becomes one `icmp eq`).
    pub rel: Option<Rel>,
}

/// One side of a [`VValue::nested`] choice.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ChoiceArm {
    /// A value known at compile time.
    Known(u64),
    /// A `choose` between two values known at compile time, as [`VValue::choice`].
    Choice(ir::Value, u64, u64),
}

impl ChoiceArm {
    /// The values it may select.
    pub fn leaves(self) -> Vec<u64> {
        match self {
            ChoiceArm::Known(a) => vec![a],
            ChoiceArm::Choice(_, a, b) => vec![a, b],
        }
    }
}

/// One side of a [`Rel`]: an integer (an `i64` SSA value) or a small Int known at compile time
/// (two constants are the same operand when they are the same number).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IntOperand {
    Ssa(ir::Value),
    Const(i64),
}

/// A truth value that is a relation between the small Ints `x` and `y`: `mask` has bit 0 set
/// when it is true where `x < y`, bit 1 where `x == y`, bit 2 where `x > y`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rel {
    pub mask: u8,
    pub x: IntOperand,
    pub y: IntOperand,
}

impl Rel {
    pub const LESS: u8 = 1;
    pub const EQUAL: u8 = 2;
    pub const GREATER: u8 = 4;
    pub const ALWAYS: u8 = 7;

    /// Its mask as a relation between `x` and `y`, when it is one between those two Ints
    /// (either way round).
    pub fn mask_on(&self, x: IntOperand, y: IntOperand) -> Option<u8> {
        if (self.x, self.y) == (x, y) {
            Some(self.mask)
        } else if (self.y, self.x) == (x, y) {
            // `a < b` is `b > a`: the outer bits trade places.
            Some((self.mask & Rel::EQUAL) | ((self.mask & Rel::LESS) << 2) | ((self.mask & Rel::GREATER) >> 2))
        } else {
            None
        }
    }

    /// The signed compare of `x` with `y` that is true exactly where the relation holds; `None`
    /// for a relation that never or always holds.
    pub fn cond(&self) -> Option<cranelift_codegen::ir::condcodes::IntCC> {
        use cranelift_codegen::ir::condcodes::IntCC;
        Some(match self.mask {
            Rel::LESS => IntCC::SignedLessThan,
            Rel::EQUAL => IntCC::Equal,
            Rel::GREATER => IntCC::SignedGreaterThan,
            3 => IntCC::SignedLessThanOrEqual,
            5 => IntCC::NotEqual,
            6 => IntCC::SignedGreaterThanOrEqual,
            _ => return None,
        })
    }
}

impl VValue {
    /// The integer of a constant that is a small Int.
    pub fn konst_small_int(&self) -> Option<i64> {
        // SAFETY: compile-time constant bits are live values (module constants).
        self.konst.and_then(|k| unsafe { Value::from_bits(k) }.as_small_int())
    }

    /// Known at compile time not to be a CellRef (an Int, a truth value, a constant of
    /// another kind): a write of it into a cell holding a CellRef writes through.
    pub fn known_not_cell_ref(&self) -> bool {
        // SAFETY: compile-time constant bits are live values (module constants).
        self.int.is_some() || self.truth.is_some() || self.konst.is_some_and(|k| !unsafe { Value::from_bits(k) }.is_cell_ref())
    }

    pub fn new(val: ir::Value, konst: Option<u64>) -> VValue {
        VValue {
            val,
            konst,
            choice: None,
            nested: None,
            may_be: None,
            int: None,
            truth: None,
            rel: None,
        }
    }
}

/// The virtual top of the AL.
#[derive(Default, Debug, Clone)]
pub struct VStack {
    entries: Vec<VEntry>,
}

/// Flushes past this depth keep stack frames small (the flush buffer has this many slots).
pub const MAX_VIRTUAL: usize = 16;

impl VStack {
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn push(&mut self, e: VEntry) {
        self.entries.push(e);
    }

    pub fn pop(&mut self) -> Option<VEntry> {
        self.entries.pop()
    }

    /// The entries, bottom first (what a flush writes).
    pub fn entries(&self) -> &[VEntry] {
        &self.entries
    }

    /// Remove every entry (after a flush).
    pub fn take_all(&mut self) -> Vec<VEntry> {
        std::mem::take(&mut self.entries)
    }

    /// Put `below` (bottom first) under the current entries (values taken from the real AL).
    pub fn insert_bottom(&mut self, below: Vec<VEntry>) {
        self.entries.splice(0..0, below);
    }

    /// The top `n` entries, bottom first, removed.
    pub fn pop_n(&mut self, n: usize) -> Vec<VEntry> {
        let at = self.entries.len() - n;
        self.entries.split_off(at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cranelift_codegen::entity::EntityRef;

    #[test]
    fn push_pop_order() {
        let mut s = VStack::default();
        for i in 0..3 {
            s.push(VEntry::new(ir::Value::new(i), Some(i as u64)));
        }
        let top2 = s.pop_n(2);
        assert_eq!(top2[0].konst(), Some(1));
        assert_eq!(top2[1].konst(), Some(2));
        assert_eq!(s.len(), 1);
        assert_eq!(s.take_all().len(), 1);
        assert!(s.is_empty());
    }
}
