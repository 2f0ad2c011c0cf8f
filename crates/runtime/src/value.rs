//! `Value`: every SOMA value in one NaN-boxed `u64`.
//!
//! # Bit layout
//!
//! A double is stored as its own IEEE-754 bits. Every NaN a double can produce is first
//! canonicalised to `0x7FF8_0000_0000_0000` (positive quiet NaN), which frees the whole range
//! of *negative* quiet NaNs, `0xFFF8_0000_0000_0000 ..= 0xFFFF_FFFF_FFFF_FFFF`, for boxed
//! values. In that range bits 63..51 are all ones, bits 50..48 are a 3-bit tag and bits
//! 47..0 are a 48-bit payload:
//!
//! | bits 63..48 | tag | kind      | bits 47..0                                         |
//! |-------------|-----|-----------|----------------------------------------------------|
//! | < `0xFFF8`  |  -  | double    | (all 64 bits are the double; NaN only `0x7FF8…0`) |
//! | `0xFFF8`    |  0  | singleton | 0 = Void, 1 = Nil, 2 = False, 3 = True             |
//! | `0xFFF9`    |  1  | small Int | two's complement, sign-extended from bit 47        |
//! | `0xFFFA`    |  2  | Str       | address of a `heap::StrObj`                        |
//! | `0xFFFB`    |  3  | BigInt    | address of a `heap::BigIntObj`                     |
//! | `0xFFFC`    |  4  | Block     | address of a `heap::BlockObj`                      |
//! | `0xFFFD`    |  5  | Builtin   | address of a `heap::BuiltinObj`                    |
//! | `0xFFFE`    |  6  | CellRef   | address of the referenced `heap::CellObj`          |
//! | `0xFFFF`    |  7  | Foreign   | address of a `heap::ForeignObj`                    |
//!
//! * 48 bits is what the NaN space leaves after 13 fixed bits and the tag, and it is exactly
//!   one user-space pointer, so ints and pointers share the payload width.
//! * Small ints are 48 bits wide: `-2^47 ..= 2^47 - 1` (about ±1.4e14). Wider results of
//!   inline arithmetic are boxed as BigInt. Invariant: **a BigInt object never holds a value
//!   that fits in a small int** (results are normalised), so "is small" is an exact range test
//!   and two equal Ints always have the same representation kind.
//! * Pointers are 48-bit user-space addresses (x86-64 and aarch64 both use at most 48 bits;
//!   allocation asserts it). A CellRef points directly at the cell: a CellRef *is* the cell's
//!   identity, so taking a reference allocates nothing.
//! * Type tests are a compare on the top 16 bits; no pointer is dereferenced to learn a type.
//!
//! `Value` is `Copy` and has no destructor: the heap is garbage collected (see `heap.rs`), so
//! a `Value` held in a Rust local is only guaranteed alive while it is reachable from a root or
//! no safepoint has run since it was read.

use std::ptr::NonNull;

/// One SOMA value. See the module documentation for the bit layout.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
#[repr(transparent)]
pub struct Value(u64);

/// First bit pattern of the boxed range (tag 0, payload 0).
pub const BOX_BASE: u64 = 0xFFF8_0000_0000_0000;
/// The one NaN a double is stored as.
pub const CANONICAL_NAN: u64 = 0x7FF8_0000_0000_0000;
/// Mask of the 48-bit payload.
pub const PAYLOAD_MASK: u64 = 0x0000_FFFF_FFFF_FFFF;
/// Number of bits in a small int.
pub const SMALL_INT_BITS: u32 = 48;
/// Smallest small int.
pub const SMALL_INT_MIN: i64 = -(1 << 47);
/// Largest small int.
pub const SMALL_INT_MAX: i64 = (1 << 47) - 1;

/// The 3-bit tag of a boxed value (bits 50..48).
#[repr(u8)]
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Tag {
    Singleton = 0,
    Int = 1,
    Str = 2,
    BigInt = 3,
    Block = 4,
    Builtin = 5,
    CellRef = 6,
    Foreign = 7,
}

impl Tag {
    /// The top 16 bits of every value with this tag.
    pub const fn high_bits(self) -> u64 {
        BOX_BASE | ((self as u64) << 48)
    }
}

const fn boxed(tag: Tag, payload: u64) -> u64 {
    tag.high_bits() | (payload & PAYLOAD_MASK)
}

/// What a value is, as a plain enum (for matching in slow paths; hot paths test bits).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Kind {
    Double,
    Void,
    Nil,
    False,
    True,
    Int,
    Str,
    BigInt,
    Block,
    Builtin,
    CellRef,
    Foreign,
}

impl Value {
    pub const VOID: Value = Value(boxed(Tag::Singleton, 0));
    pub const NIL: Value = Value(boxed(Tag::Singleton, 1));
    pub const FALSE: Value = Value(boxed(Tag::Singleton, 2));
    pub const TRUE: Value = Value(boxed(Tag::Singleton, 3));

    /// The raw bits (what crosses the C ABI and what JIT code manipulates).
    #[inline]
    pub const fn to_bits(self) -> u64 {
        self.0
    }

    /// Rebuild a value from raw bits.
    ///
    /// # Safety
    /// `bits` must have been produced by [`Value::to_bits`] of this runtime, and if it is a
    /// pointer value the object must still be alive (reachable from a root, or no safepoint has
    /// run since the value was read from one). Forged pointer bits are undefined behaviour.
    #[inline]
    pub const unsafe fn from_bits(bits: u64) -> Value {
        Value(bits)
    }

    #[inline]
    pub fn bool(b: bool) -> Value {
        if b {
            Value::TRUE
        } else {
            Value::FALSE
        }
    }

    /// A double. NaNs are canonicalised so they never collide with boxed values.
    #[inline]
    pub fn from_f64(f: f64) -> Value {
        if f.is_nan() {
            Value(CANONICAL_NAN)
        } else {
            Value(f.to_bits())
        }
    }

    /// A small int, or `None` when `i` is outside `SMALL_INT_MIN..=SMALL_INT_MAX`.
    #[inline]
    pub fn small_int(i: i64) -> Option<Value> {
        if (SMALL_INT_MIN..=SMALL_INT_MAX).contains(&i) {
            Some(Value(boxed(Tag::Int, i as u64)))
        } else {
            None
        }
    }

    /// True when `i` fits in a small int.
    #[inline]
    pub fn fits_small(i: i64) -> bool {
        (SMALL_INT_MIN..=SMALL_INT_MAX).contains(&i)
    }

    #[inline]
    pub(crate) fn from_ptr(tag: Tag, addr: usize) -> Value {
        debug_assert!(tag as u8 >= Tag::Str as u8);
        assert!(
            (addr as u64) & !PAYLOAD_MASK == 0,
            "heap address does not fit in 48 bits"
        );
        Value(boxed(tag, addr as u64))
    }

    /// The top 16 bits, for tag tests.
    #[inline]
    pub const fn high(self) -> u64 {
        self.0 & !PAYLOAD_MASK
    }

    #[inline]
    pub const fn is_double(self) -> bool {
        self.0 < BOX_BASE
    }

    /// The tag of a boxed value; `None` for doubles.
    #[inline]
    pub fn tag(self) -> Option<Tag> {
        if self.is_double() {
            return None;
        }
        Some(match (self.0 >> 48) & 7 {
            0 => Tag::Singleton,
            1 => Tag::Int,
            2 => Tag::Str,
            3 => Tag::BigInt,
            4 => Tag::Block,
            5 => Tag::Builtin,
            6 => Tag::CellRef,
            _ => Tag::Foreign,
        })
    }

    #[inline]
    fn has_tag(self, tag: Tag) -> bool {
        self.high() == tag.high_bits()
    }

    pub fn kind(self) -> Kind {
        match self.tag() {
            None => Kind::Double,
            Some(Tag::Singleton) => match self.0 & PAYLOAD_MASK {
                0 => Kind::Void,
                1 => Kind::Nil,
                2 => Kind::False,
                _ => Kind::True,
            },
            Some(Tag::Int) => Kind::Int,
            Some(Tag::Str) => Kind::Str,
            Some(Tag::BigInt) => Kind::BigInt,
            Some(Tag::Block) => Kind::Block,
            Some(Tag::Builtin) => Kind::Builtin,
            Some(Tag::CellRef) => Kind::CellRef,
            Some(Tag::Foreign) => Kind::Foreign,
        }
    }

    #[inline]
    pub fn is_void(self) -> bool {
        self == Value::VOID
    }
    #[inline]
    pub fn is_nil(self) -> bool {
        self == Value::NIL
    }
    #[inline]
    pub fn is_small_int(self) -> bool {
        self.has_tag(Tag::Int)
    }
    /// Any Int: small or BigInt.
    #[inline]
    pub fn is_int(self) -> bool {
        self.has_tag(Tag::Int) || self.has_tag(Tag::BigInt)
    }
    #[inline]
    pub fn is_str(self) -> bool {
        self.has_tag(Tag::Str)
    }
    #[inline]
    pub fn is_cell_ref(self) -> bool {
        self.has_tag(Tag::CellRef)
    }
    /// Blocks and builtins: the values `>` executes.
    #[inline]
    pub fn is_executable(self) -> bool {
        self.has_tag(Tag::Block) || self.has_tag(Tag::Builtin)
    }
    /// `choose` truthiness: Nil, Void and False are false, everything else is true.
    #[inline]
    pub fn is_truthy(self) -> bool {
        !(self == Value::NIL || self == Value::VOID || self == Value::FALSE)
    }
    /// True for every value that points at a heap object.
    #[inline]
    pub fn is_heap(self) -> bool {
        !self.is_double() && (self.0 >> 48) & 7 >= Tag::Str as u64
    }

    /// The small int payload, sign-extended.
    #[inline]
    pub fn as_small_int(self) -> Option<i64> {
        if self.is_small_int() {
            Some(((self.0 << 16) as i64) >> 16)
        } else {
            None
        }
    }

    #[inline]
    pub fn as_f64(self) -> Option<f64> {
        if self.is_double() {
            Some(f64::from_bits(self.0))
        } else {
            None
        }
    }

    /// The object address of a value with tag `tag` (the typed accessors are next to the
    /// object layouts: `heap.rs`, `cell.rs`).
    #[inline]
    pub(crate) fn ptr<T>(self, tag: Tag) -> Option<NonNull<T>> {
        if self.has_tag(tag) {
            NonNull::new((self.0 & PAYLOAD_MASK) as usize as *mut T)
        } else {
            None
        }
    }

    /// The untyped object address of a heap value.
    #[inline]
    pub(crate) fn heap_addr(self) -> Option<NonNull<crate::object::Header>> {
        if self.is_heap() {
            NonNull::new((self.0 & PAYLOAD_MASK) as usize as *mut crate::object::Header)
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn singletons_are_distinct_and_boxed() {
        let all = [Value::VOID, Value::NIL, Value::FALSE, Value::TRUE];
        for (i, a) in all.iter().enumerate() {
            assert!(!a.is_double());
            assert!(!a.is_heap());
            for b in &all[i + 1..] {
                assert_ne!(a, b);
            }
        }
        assert_eq!(Value::VOID.kind(), Kind::Void);
        assert_eq!(Value::TRUE.kind(), Kind::True);
        assert_eq!(Value::FALSE.type_name(), "Bool");
    }

    #[test]
    fn small_int_round_trip_and_range() {
        for i in [0, 1, -1, 42, -7, SMALL_INT_MAX, SMALL_INT_MIN, 1 << 40, -(1 << 40)] {
            let v = Value::small_int(i).unwrap();
            assert_eq!(v.as_small_int(), Some(i));
            assert!(v.is_int() && v.is_small_int() && !v.is_double());
            assert_eq!(v.type_name(), "Int");
        }
        assert!(Value::small_int(SMALL_INT_MAX + 1).is_none());
        assert!(Value::small_int(SMALL_INT_MIN - 1).is_none());
        assert!(Value::small_int(i64::MAX).is_none());
    }

    #[test]
    fn doubles_stand_for_themselves() {
        for f in [0.0, -0.0, 1.5, -2.25, f64::INFINITY, f64::NEG_INFINITY, f64::MAX, f64::MIN] {
            let v = Value::from_f64(f);
            assert!(v.is_double());
            assert_eq!(v.as_f64().unwrap().to_bits(), f.to_bits());
        }
        // Every NaN, including negative ones with payloads, becomes the canonical NaN.
        let weird = f64::from_bits(0xFFFF_0000_0000_1234);
        assert!(weird.is_nan());
        let v = Value::from_f64(weird);
        assert!(v.is_double());
        assert_eq!(v.to_bits(), CANONICAL_NAN);
        assert_eq!(Value::from_f64(f64::NAN).to_bits(), CANONICAL_NAN);
    }

    #[test]
    fn truthiness_matches_choose() {
        assert!(!Value::NIL.is_truthy());
        assert!(!Value::VOID.is_truthy());
        assert!(!Value::FALSE.is_truthy());
        assert!(Value::TRUE.is_truthy());
        assert!(Value::small_int(0).unwrap().is_truthy());
    }

    #[test]
    fn tags_occupy_the_documented_high_bits() {
        assert_eq!(Value::VOID.to_bits(), 0xFFF8_0000_0000_0000);
        assert_eq!(Value::TRUE.to_bits(), 0xFFF8_0000_0000_0003);
        assert_eq!(Value::small_int(-1).unwrap().to_bits(), 0xFFF9_FFFF_FFFF_FFFF);
        assert_eq!(Tag::CellRef.high_bits(), 0xFFFE_0000_0000_0000);
        assert_eq!(Tag::Foreign.high_bits(), 0xFFFF_0000_0000_0000);
    }
}
