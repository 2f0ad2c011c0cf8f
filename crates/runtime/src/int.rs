//! SOMA Int arithmetic: inline fast paths on 48-bit small ints, BigInt slow paths.
//!
//! Results equal Python's exactly: `/` is floor division and `%` takes the sign of the
//! divisor (`-7 / 2 == -4`, `-7 % 2 == 1`, `7 % -2 == -1`). Every result that fits in a small
//! int is returned as one (BigInts are normalised), which the `value.rs` invariant relies on.
//!
//! The fast paths work on `i64` payloads of small ints: the sum or difference of two 48-bit
//! numbers always fits in `i64`, so only the 48-bit range needs checking; products can
//! overflow `i64` and fall back to `i128`.

use crate::heap::Heap;
use crate::value::Value;
use num_bigint::BigInt;
use num_integer::Integer;
use num_traits::{Signed, ToPrimitive, Zero};
use std::cmp::Ordering;

/// The arithmetic builtins.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[repr(u32)]
pub enum ArithOp {
    Add = 0,
    Sub = 1,
    Mul = 2,
    FloorDiv = 3,
    Mod = 4,
}

impl ArithOp {
    /// The builtin's SOMA name (used in error messages).
    pub fn name(self) -> &'static str {
        match self {
            ArithOp::Add => "+",
            ArithOp::Sub => "-",
            ArithOp::Mul => "*",
            ArithOp::FloorDiv => "/",
            ArithOp::Mod => "%",
        }
    }

    pub fn from_u32(n: u32) -> Option<ArithOp> {
        Some(match n {
            0 => ArithOp::Add,
            1 => ArithOp::Sub,
            2 => ArithOp::Mul,
            3 => ArithOp::FloorDiv,
            4 => ArithOp::Mod,
            _ => return None,
        })
    }
}

/// Why an arithmetic operation has no result.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum ArithError {
    NotInts,
    DivisionByZero,
    ModuloByZero,
    /// The result would take the heap past its memory limit (checked before computing it).
    MemoryLimit,
}

/// Heap bytes of the Int `v` (0 for a small int, which is not on the heap).
#[inline]
fn heap_bytes(v: Value) -> usize {
    v.as_bigint().map_or(0, |b| (b.bits() as usize).div_ceil(8))
}

/// An upper bound on the heap bytes of `a op b` (0 when both are small ints: the result then
/// needs at most 16 bytes). Used to check the memory limit before computing a big result.
#[inline]
pub fn result_bytes_bound(op: ArithOp, a: Value, b: Value) -> usize {
    let (x, y) = (heap_bytes(a), heap_bytes(b));
    if x == 0 && y == 0 {
        return 0;
    }
    let digits = match op {
        ArithOp::Add | ArithOp::Sub => x.max(y) + 8,
        ArithOp::Mul => x + y + 8,
        ArithOp::FloorDiv | ArithOp::Mod => x.max(y) + 8,
    };
    std::mem::size_of::<crate::heap::BigIntObj>() + digits
}

// ----- fast paths on small-int payloads (both operands in the 48-bit range) -----

/// `a + b` if it fits in a small int.
#[inline]
pub fn small_add(a: i64, b: i64) -> Option<i64> {
    let r = a + b; // cannot overflow i64: |a|, |b| < 2^47
    Value::fits_small(r).then_some(r)
}

#[inline]
pub fn small_sub(a: i64, b: i64) -> Option<i64> {
    let r = a - b;
    Value::fits_small(r).then_some(r)
}

#[inline]
pub fn small_mul(a: i64, b: i64) -> Option<i64> {
    a.checked_mul(b).filter(|&r| Value::fits_small(r))
}

/// Python's `a // b` for `b != 0`, if it fits (only `SMALL_INT_MIN // -1` does not).
#[inline]
pub fn small_floordiv(a: i64, b: i64) -> Option<i64> {
    debug_assert!(b != 0);
    let q = a / b;
    let q = if (a % b != 0) && ((a < 0) != (b < 0)) { q - 1 } else { q };
    Value::fits_small(q).then_some(q)
}

/// Python's `a % b` for `b != 0` (always fits: |result| < |b|).
#[inline]
pub fn small_mod(a: i64, b: i64) -> i64 {
    debug_assert!(b != 0);
    let r = a % b;
    if r != 0 && ((r < 0) != (b < 0)) {
        r + b
    } else {
        r
    }
}

// ----- values -----

/// The Int as a BigInt (for slow paths). `None` if `v` is not an Int.
pub fn to_bigint(v: Value) -> Option<BigInt> {
    if let Some(i) = v.as_small_int() {
        Some(BigInt::from(i))
    } else {
        v.as_bigint().cloned()
    }
}

/// The Int value of a BigInt result, normalised: small ints stay inline.
pub fn from_bigint(heap: &mut Heap, b: BigInt) -> Value {
    if let Some(v) = b.to_i64().and_then(Value::small_int) {
        return v;
    }
    heap.alloc_bigint(b)
}

pub fn from_i128(heap: &mut Heap, i: i128) -> Value {
    if let Some(v) = i64::try_from(i).ok().and_then(Value::small_int) {
        return v;
    }
    heap.alloc_bigint(BigInt::from(i))
}

pub fn from_i64(heap: &mut Heap, i: i64) -> Value {
    match Value::small_int(i) {
        Some(v) => v,
        None => heap.alloc_bigint(BigInt::from(i)),
    }
}

/// `a op b` on two values with Python semantics. Allocates a BigInt when the result does not
/// fit in a small int; never collects.
pub fn arith(heap: &mut Heap, op: ArithOp, a: Value, b: Value) -> Result<Value, ArithError> {
    if let (Some(x), Some(y)) = (a.as_small_int(), b.as_small_int()) {
        let fast = match op {
            ArithOp::Add => small_add(x, y),
            ArithOp::Sub => small_sub(x, y),
            ArithOp::Mul => small_mul(x, y),
            ArithOp::FloorDiv if y == 0 => return Err(ArithError::DivisionByZero),
            ArithOp::FloorDiv => small_floordiv(x, y),
            ArithOp::Mod if y == 0 => return Err(ArithError::ModuloByZero),
            ArithOp::Mod => Some(small_mod(x, y)),
        };
        if let Some(r) = fast {
            return Ok(Value::small_int(r).expect("fast path result fits"));
        }
        // Small operands whose result overflows 48 bits: i128 holds every such result.
        let (x, y) = (x as i128, y as i128);
        let r = match op {
            ArithOp::Add => x + y,
            ArithOp::Sub => x - y,
            ArithOp::Mul => x * y,
            ArithOp::FloorDiv => {
                let q = x / y;
                q - i128::from(x % y != 0 && ((x < 0) != (y < 0)))
            }
            ArithOp::Mod => unreachable!("small modulo always fits"),
        };
        return Ok(from_i128(heap, r));
    }
    if !(a.is_int() && b.is_int()) {
        return Err(ArithError::NotInts);
    }
    if heap.check_alloc(result_bytes_bound(op, a, b)).is_err() {
        return Err(ArithError::MemoryLimit);
    }
    let (Some(x), Some(y)) = (to_bigint(a), to_bigint(b)) else {
        return Err(ArithError::NotInts);
    };
    let r = match op {
        ArithOp::Add => x + y,
        ArithOp::Sub => x - y,
        ArithOp::Mul => x * y,
        ArithOp::FloorDiv if y.is_zero() => return Err(ArithError::DivisionByZero),
        ArithOp::FloorDiv => x.div_floor(&y),
        ArithOp::Mod if y.is_zero() => return Err(ArithError::ModuloByZero),
        ArithOp::Mod => x.mod_floor(&y),
    };
    Ok(from_bigint(heap, r))
}

/// Compare two Ints. `None` if either is not an Int.
pub fn compare(a: Value, b: Value) -> Option<Ordering> {
    if let (Some(x), Some(y)) = (a.as_small_int(), b.as_small_int()) {
        return Some(x.cmp(&y));
    }
    // Normalisation means a BigInt is outside the small range, so mixed comparisons are
    // decided by the BigInt's sign; only two BigInts need a full comparison.
    match (a.as_small_int(), b.as_small_int(), a.as_bigint(), b.as_bigint()) {
        (Some(_), None, None, Some(y)) => Some(if y.is_positive() {
            Ordering::Less
        } else {
            Ordering::Greater
        }),
        (None, Some(_), Some(x), None) => Some(if x.is_positive() {
            Ordering::Greater
        } else {
            Ordering::Less
        }),
        (None, None, Some(x), Some(y)) => Some(x.cmp(y)),
        _ => None,
    }
}

/// Decimal text of an Int. `None` if `v` is not an Int.
pub fn to_decimal(v: Value) -> Option<String> {
    if let Some(i) = v.as_small_int() {
        Some(i.to_string())
    } else {
        v.as_bigint().map(|b| b.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn int(heap: &mut Heap, i: i128) -> Value {
        from_i128(heap, i)
    }

    fn as_i128(v: Value) -> i128 {
        to_bigint(v).unwrap().to_i128().unwrap()
    }

    /// Python semantics via i128 (the reference for moderate ranges).
    fn python(op: ArithOp, a: i128, b: i128) -> Option<i128> {
        Some(match op {
            ArithOp::Add => a + b,
            ArithOp::Sub => a - b,
            ArithOp::Mul => a * b,
            ArithOp::FloorDiv => {
                if b == 0 {
                    return None;
                }
                let q = a / b;
                if (a % b != 0) && ((a < 0) != (b < 0)) {
                    q - 1
                } else {
                    q
                }
            }
            ArithOp::Mod => {
                if b == 0 {
                    return None;
                }
                let r = a % b;
                if r != 0 && ((r < 0) != (b < 0)) {
                    r + b
                } else {
                    r
                }
            }
        })
    }

    #[test]
    fn python_floor_division_and_modulo_of_negatives() {
        let mut heap = Heap::new();
        let cases = [
            (ArithOp::FloorDiv, -7, 2, -4),
            (ArithOp::Mod, -7, 2, 1),
            (ArithOp::Mod, 7, -2, -1),
            (ArithOp::FloorDiv, 7, -2, -4),
            (ArithOp::FloorDiv, -7, -2, 3),
            (ArithOp::Mod, -7, -2, -1),
            (ArithOp::FloorDiv, 6, -3, -2),
            (ArithOp::Mod, 6, -3, 0),
        ];
        for (op, a, b, want) in cases {
            let (va, vb) = (int(&mut heap, a), int(&mut heap, b));
            assert_eq!(as_i128(arith(&mut heap, op, va, vb).unwrap()), want, "{a} {op:?} {b}");
        }
    }

    #[test]
    fn division_by_zero_is_an_error_for_small_and_big() {
        let mut heap = Heap::new();
        let zero = Value::small_int(0).unwrap();
        let big = int(&mut heap, 1i128 << 80);
        for a in [Value::small_int(5).unwrap(), big] {
            assert_eq!(arith(&mut heap, ArithOp::FloorDiv, a, zero), Err(ArithError::DivisionByZero));
            assert_eq!(arith(&mut heap, ArithOp::Mod, a, zero), Err(ArithError::ModuloByZero));
        }
        assert_eq!(arith(&mut heap, ArithOp::Add, Value::NIL, zero), Err(ArithError::NotInts));
    }

    #[test]
    fn overflow_goes_big_and_comes_back_small() {
        let mut heap = Heap::new();
        let max = Value::small_int(crate::value::SMALL_INT_MAX).unwrap();
        let one = Value::small_int(1).unwrap();
        let big = arith(&mut heap, ArithOp::Add, max, one).unwrap();
        assert!(big.as_bigint().is_some());
        assert_eq!(as_i128(big), (1i128 << 47));
        let back = arith(&mut heap, ArithOp::Sub, big, one).unwrap();
        assert!(back.is_small_int(), "normalised back to inline");
        let min = Value::small_int(crate::value::SMALL_INT_MIN).unwrap();
        let minus_one = Value::small_int(-1).unwrap();
        let q = arith(&mut heap, ArithOp::FloorDiv, min, minus_one).unwrap();
        assert_eq!(as_i128(q), 1i128 << 47);
        assert!(q.as_bigint().is_some());
    }

    #[test]
    fn known_big_cases() {
        let mut heap = Heap::new();
        let e20 = from_bigint(&mut heap, BigInt::from(10u8).pow(20));
        let three = Value::small_int(3).unwrap();
        let r = arith(&mut heap, ArithOp::Mul, e20, three).unwrap();
        assert_eq!(to_decimal(r).unwrap(), "300000000000000000000");
        let r = arith(&mut heap, ArithOp::FloorDiv, r, Value::small_int(-7).unwrap()).unwrap();
        assert_eq!(to_decimal(r).unwrap(), "-42857142857142857143");
        let m = arith(&mut heap, ArithOp::Mod, e20, Value::small_int(-7).unwrap()).unwrap();
        // Python: 10**20 % -7 == -5
        assert_eq!(to_decimal(m).unwrap(), "-5");
        let neg = from_bigint(&mut heap, -BigInt::from(10u8).pow(30));
        assert_eq!(compare(neg, three), Some(Ordering::Less));
        assert_eq!(compare(three, neg), Some(Ordering::Greater));
        assert_eq!(compare(e20, neg), Some(Ordering::Greater));
        assert_eq!(compare(e20, Value::NIL), None);
    }

    #[test]
    fn matches_i128_reference_over_a_grid() {
        let mut heap = Heap::new();
        let edges: [i128; 13] = [
            0,
            1,
            -1,
            2,
            -7,
            1 << 47,
            (1 << 47) - 1,
            -(1 << 47),
            -(1 << 47) - 1,
            1 << 62,
            -(1 << 62),
            i64::MAX as i128,
            i64::MIN as i128,
        ];
        for &a in &edges {
            for &b in &edges {
                for op in [ArithOp::Add, ArithOp::Sub, ArithOp::Mul, ArithOp::FloorDiv, ArithOp::Mod] {
                    let (va, vb) = (int(&mut heap, a), int(&mut heap, b));
                    let got = arith(&mut heap, op, va, vb).ok().map(as_i128);
                    assert_eq!(got, python(op, a, b), "{a} {op:?} {b}");
                    if let Ok(v) = arith(&mut heap, op, va, vb) {
                        let fits = as_i128(v) >= -(1 << 47) && as_i128(v) < (1 << 47);
                        assert_eq!(v.is_small_int(), fits, "normalised");
                    }
                }
                assert_eq!(
                    compare(int(&mut heap, a), int(&mut heap, b)),
                    Some(a.cmp(&b))
                );
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn random_arith_matches_i128(a in -(1i128 << 60)..(1i128 << 60), b in -(1i128 << 60)..(1i128 << 60), op in 0u32..5) {
            let mut heap = Heap::new();
            let op = ArithOp::from_u32(op).unwrap();
            let (va, vb) = (int(&mut heap, a), int(&mut heap, b));
            let got = arith(&mut heap, op, va, vb).ok().map(as_i128);
            proptest::prop_assert_eq!(got, python(op, a, b));
        }
    }
}
