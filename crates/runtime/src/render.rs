//! Text conversions with Python-exact behaviour: `print` rendering of values, Python's `repr`
//! of floats, and Python's `int(str)` for `toInt`.

use crate::decode::{Code, Const};
use crate::opcodes::Opcode;
use crate::value::{Kind, Value};
use num_bigint::BigInt;

/// How `print` shows a CellRef: the reference prints `CellRef(` and the Python object id of
/// the cell, different on every run; ours is the same text on every run and tier.
pub const CELLREF_FORM: &str = "CellRef(...)";

/// How `print` shows a Block with body `code`: its statements by kind, as the reference
/// prints its block objects (`Block(body=[RunNode(IntNode), RunNode(ExecNode)])`). Every
/// statement compiles to exactly one instruction, so the kinds follow from the opcodes.
pub fn block_form(code: &Code) -> String {
    let kinds: Vec<String> = code
        .instrs
        .iter()
        .map(|ins| {
            let kind = match ins.op {
                Opcode::Const => match code.consts.get(ins.operand as usize) {
                    Some(Const::Str(_)) => "StringNode",
                    Some(Const::Block(_)) => "BlockNode",
                    _ => "IntNode",
                },
                Opcode::LoadStore | Opcode::LoadReg => "ValuePath",
                Opcode::RefStore | Opcode::RefReg => "ReferencePath",
                Opcode::SetStore | Opcode::SetReg | Opcode::SetrefStore | Opcode::SetrefReg => {
                    "StoreNode"
                }
                Opcode::ExecStore | Opcode::ExecReg | Opcode::ExecConst => "ExecNode",
            };
            format!("RunNode({kind})")
        })
        .collect();
    format!("Block(body=[{}])", kinds.join(", "))
}

/// How `print` (and `debug.error`) renders a value (docs/semantics.md "Rendering values").
/// `foreign_repr` renders a foreign object (the bridge passes Python's `repr`), `block_repr`
/// a Block (the VM passes [`block_form`] of its Code).
pub fn print_form(
    v: Value,
    foreign_repr: &dyn Fn(Value) -> String,
    block_repr: &dyn Fn(Value) -> String,
) -> String {
    match v.kind() {
        Kind::Double => float_repr(v.as_f64().unwrap()),
        Kind::Void => "Void".into(),
        Kind::Nil => "Nil".into(),
        Kind::False => "False".into(),
        Kind::True => "True".into(),
        Kind::Int | Kind::BigInt => crate::int::to_decimal(v).unwrap(),
        Kind::Str => v.as_str().unwrap().to_string(),
        Kind::Block => block_repr(v),
        Kind::Builtin => format!("<builtin {}>", builtin_name(v)),
        Kind::CellRef => CELLREF_FORM.into(),
        Kind::Foreign => foreign_repr(v),
    }
}

/// The Store name of a builtin value.
pub fn builtin_name<'a>(v: Value) -> &'a str {
    let p = v.as_builtin_obj().expect("builtin value");
    // SAFETY: a Builtin value points at a live BuiltinObj (builtins are VM roots for the
    // VM's whole life); its name is immutable.
    unsafe { &(*p.as_ptr()).name }
}

/// How the `.soma` test format renders one AL entry.
pub fn al_form(v: Value) -> String {
    match v.kind() {
        Kind::Str => format!("({})", v.as_str().unwrap()),
        Kind::Block => "Block".into(),
        Kind::Builtin => "BuiltinBlock".into(),
        Kind::CellRef => "CellRef".into(),
        Kind::Foreign | Kind::Double => v.type_name().to_string(),
        _ => print_form(v, &|_| String::new(), &|_| String::new()),
    }
}

/// Python's `repr(float)`: shortest round-trip digits; fixed notation for decimal exponents in
/// `-4..16`, otherwise `d.ddde+XX`.
pub fn float_repr(f: f64) -> String {
    if f.is_nan() {
        return "nan".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "inf".into() } else { "-inf".into() };
    }
    let sign = if f.is_sign_negative() { "-" } else { "" };
    // Rust's `{:e}` gives the shortest round-trip digits: "1.2345e-5", "1e20", "0e0".
    let sci = format!("{:e}", f.abs());
    let (mantissa, exp) = sci.split_once('e').expect("`{:e}` has an exponent");
    let exp: i32 = exp.parse().expect("integer exponent");
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    let body = if (-4..16).contains(&exp) {
        if exp >= 0 {
            let int_len = exp as usize + 1;
            if digits.len() <= int_len {
                format!("{}{}.0", digits, "0".repeat(int_len - digits.len()))
            } else {
                format!("{}.{}", &digits[..int_len], &digits[int_len..])
            }
        } else {
            format!("0.{}{}", "0".repeat((-exp - 1) as usize), digits)
        }
    } else {
        let mant = if digits.len() > 1 {
            format!("{}.{}", &digits[..1], &digits[1..])
        } else {
            digits
        };
        let esign = if exp < 0 { '-' } else { '+' };
        format!("{mant}e{esign}{:02}", exp.abs())
    };
    format!("{sign}{body}")
}

/// Code points Python's `str.isspace()` accepts (Unicode 14, as CPython 3.11).
const PY_WHITESPACE: [u32; 29] = [
    0x9, 0xa, 0xb, 0xc, 0xd, 0x1c, 0x1d, 0x1e, 0x1f, 0x20, 0x85, 0xa0, 0x1680, 0x2000, 0x2001,
    0x2002, 0x2003, 0x2004, 0x2005, 0x2006, 0x2007, 0x2008, 0x2009, 0x200a, 0x2028, 0x2029,
    0x202f, 0x205f, 0x3000,
];

/// The zero of every run of Unicode decimal digits (category Nd; each run is ten code points
/// with values 0..9), as CPython 3.11's `unicodedata.decimal`.
const DECIMAL_ZEROS: [u32; 66] = [
    0x30, 0x660, 0x6f0, 0x7c0, 0x966, 0x9e6, 0xa66, 0xae6, 0xb66, 0xbe6, 0xc66, 0xce6, 0xd66,
    0xde6, 0xe50, 0xed0, 0xf20, 0x1040, 0x1090, 0x17e0, 0x1810, 0x1946, 0x19d0, 0x1a80, 0x1a90,
    0x1b50, 0x1bb0, 0x1c40, 0x1c50, 0xa620, 0xa8d0, 0xa900, 0xa9d0, 0xa9f0, 0xaa50, 0xabf0,
    0xff10, 0x104a0, 0x10d30, 0x11066, 0x110f0, 0x11136, 0x111d0, 0x112f0, 0x11450, 0x114d0,
    0x11650, 0x116c0, 0x11730, 0x118e0, 0x11950, 0x11c50, 0x11d50, 0x11da0, 0x16a60, 0x16ac0,
    0x16b50, 0x1d7ce, 0x1d7d8, 0x1d7e2, 0x1d7ec, 0x1d7f6, 0x1e140, 0x1e2f0, 0x1e950, 0x1fbf0,
];

fn py_isspace(c: char) -> bool {
    PY_WHITESPACE.binary_search(&(c as u32)).is_ok()
}

fn py_decimal(c: char) -> Option<u8> {
    let cp = c as u32;
    let i = match DECIMAL_ZEROS.binary_search(&cp) {
        Ok(i) => i,
        Err(0) => return None,
        Err(i) => i - 1,
    };
    let d = cp - DECIMAL_ZEROS[i];
    (d < 10).then_some(d as u8)
}

/// Python's `int(s)` in base 10: surrounding whitespace, an optional sign, Unicode decimal
/// digits with single underscores between them. `None` where Python raises `ValueError`.
/// There is no digit limit: the Python tier lifts `sys.int_max_str_digits` for SOMA's own
/// conversions (python/soma/bigint.py), so this does not apply one either.
pub fn python_int(s: &str) -> Option<BigInt> {
    let t = s.trim_matches(py_isspace);
    let (negative, body) = match t.chars().next()? {
        '-' => (true, &t[1..]),
        '+' => (false, &t[1..]),
        _ => (false, t),
    };
    let mut ascii = String::with_capacity(body.len());
    let mut prev_underscore = true; // forbids a leading underscore
    for c in body.chars() {
        if c == '_' {
            if prev_underscore {
                return None;
            }
            prev_underscore = true;
        } else {
            ascii.push((b'0' + py_decimal(c)?) as char);
            prev_underscore = false;
        }
    }
    if ascii.is_empty() || prev_underscore {
        return None;
    }
    let magnitude: BigInt = ascii.parse().ok()?;
    Some(if negative { -magnitude } else { magnitude })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn float_repr_matches_python() {
        let cases: [(f64, &str); 16] = [
            (1.0, "1.0"),
            (-0.0, "-0.0"),
            (0.0, "0.0"),
            (1.5, "1.5"),
            (0.1, "0.1"),
            (1e16, "1e+16"),
            (1e15, "1000000000000000.0"),
            (123456789.125, "123456789.125"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (1.5e-7, "1.5e-07"),
            (1.7976931348623157e308, "1.7976931348623157e+308"),
            (5e-324, "5e-324"),
            (f64::INFINITY, "inf"),
            (f64::NEG_INFINITY, "-inf"),
            (-2.5e20, "-2.5e+20"),
        ];
        for (f, want) in cases {
            assert_eq!(float_repr(f), want, "{f:e}");
        }
        assert_eq!(float_repr(f64::NAN), "nan");
    }

    #[test]
    fn python_int_accepts_what_python_accepts() {
        let ok: [(&str, i64); 9] = [
            ("42", 42),
            ("  -17\n", -17),
            ("+5", 5),
            ("1_000", 1000),
            ("007", 7),
            ("-0", 0),
            ("\u{0663}\u{0664}", 34), // Arabic-Indic digits
            ("\u{2003}9\u{1c}", 9),   // em space and a separator Python calls whitespace
            ("\u{ff11}\u{ff10}", 10), // fullwidth digits
        ];
        for (s, want) in ok {
            assert_eq!(python_int(s), Some(BigInt::from(want)), "{s:?}");
        }
        for bad in ["", " ", "-", "+-1", "1__0", "_1", "1_", "12ab", "1.0", "0x10", "1 2", "²"] {
            assert_eq!(python_int(bad), None, "{bad:?}");
        }
        assert_eq!(
            python_int("123456789012345678901234567890").unwrap().to_string(),
            "123456789012345678901234567890"
        );
        assert_eq!(python_int(&"9".repeat(5000)).unwrap().to_string().len(), 5000, "no digit limit");
    }
}
