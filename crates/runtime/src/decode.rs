//! Decoder for serialized SOMA modules (docs/bytecode.md, version 1).
//!
//! Every malformed input is an `Err(DecodeError)`; the decoder never panics and never
//! allocates more than the input can describe (every count is checked against the bytes left
//! before anything is reserved).

use crate::opcodes::{Opcode, OperandKind, Root};
use num_bigint::{BigInt, Sign};
use std::fmt;
use std::rc::Rc;

pub use crate::format::{MAGIC, VERSION};
use crate::format::{CONST_BIGINT, CONST_BLOCK, CONST_INT, CONST_STR};

/// A decoded module: every Code of one compiled source. Code 0 is the top-level program.
#[derive(Debug, Clone, PartialEq)]
pub struct Module {
    pub source: String,
    pub codes: Vec<Code>,
}

/// One straight-line unit of bytecode (the program or a block literal).
#[derive(Debug, Clone, PartialEq)]
pub struct Code {
    pub name: String,
    pub consts: Vec<Const>,
    pub paths: Vec<Path>,
    pub instrs: Vec<Instr>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Const {
    Int(i64),
    /// An Int outside the i64 range (the arbitrary-size form of one that fits decodes as
    /// `Int`).
    BigInt(BigInt),
    Str(String),
    /// Index of the block literal's Code in the module.
    Block(u32),
}

/// A pre-split path. A Register path omits the leading `_` (`_` itself is `[]`).
#[derive(Debug, Clone, PartialEq)]
pub struct Path {
    pub root: Root,
    /// The components: text plus symbol (a `Component` derefs to `str` and is a `cell::Name`
    /// that needs no symbol-table lookup).
    pub components: Vec<Component>,
    /// The components interned (`sym.rs`): what the graph walks with (integer compares).
    pub syms: Box<[crate::sym::Sym]>,
    /// The path as written (`a.b`, `_`, `_.x`), for error messages.
    pub display: String,
}

/// One path component: its text and its interned symbol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Component {
    pub text: Rc<str>,
    pub sym: crate::sym::Sym,
}

impl Component {
    pub fn new(text: Rc<str>) -> Component {
        let sym = crate::sym::Sym::intern(&text);
        Component { text, sym }
    }
}

impl std::ops::Deref for Component {
    type Target = str;
    fn deref(&self) -> &str {
        &self.text
    }
}

impl AsRef<str> for Component {
    fn as_ref(&self) -> &str {
        &self.text
    }
}

impl crate::sym::Name for Component {
    #[inline]
    fn sym(&self) -> crate::sym::Sym {
        self.sym
    }
    #[inline]
    fn find_sym(&self) -> Option<crate::sym::Sym> {
        Some(self.sym)
    }
}

impl Path {
    pub fn new(root: Root, components: Vec<Rc<str>>) -> Path {
        let components: Vec<Component> = components.into_iter().map(Component::new).collect();
        let display = match root {
            Root::Store => components.iter().map(|c| &**c).collect::<Vec<_>>().join("."),
            Root::Register => std::iter::once("_")
                .chain(components.iter().map(|c| &**c))
                .collect::<Vec<_>>()
                .join("."),
        };
        let syms = components.iter().map(|c| c.sym).collect();
        Path {
            root,
            components,
            syms,
            display,
        }
    }
}

/// One instruction with the 1-based position of its statement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Instr {
    pub op: Opcode,
    pub operand: u32,
    pub line: u32,
    pub col: u32,
}

/// Why a module was rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeErrorKind {
    BadMagic,
    UnknownVersion(u16),
    Truncated,
    TrailingBytes,
    LebTooLong,
    LebOutOfRange,
    LengthPastEnd,
    InvalidUtf8,
    UnknownConstTag(u8),
    UnknownPathRoot(u8),
    UnknownOpcode(u8),
    BadSign(u8),
    TrailingZeroMagnitude,
    ConstIndexOutOfRange,
    PathIndexOutOfRange,
    RootMismatch,
    EmptyStorePath,
    BadComponent,
    ExecConstNotBlock,
    BadBlockIndex,
    /// A Code other than code 0 that no Block constant names (offset: where the Code starts).
    OrphanCode,
    /// A second Block constant naming the same Code (offset: that constant).
    SharedCode,
    /// A module without code 0, the program.
    NoCode,
    ZeroPosition,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError {
    pub kind: DecodeErrorKind,
    /// Byte offset where the problem was found.
    pub offset: usize,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid bytecode: {:?} at byte {}", self.kind, self.offset)
    }
}

impl std::error::Error for DecodeError {}

type Result<T> = std::result::Result<T, DecodeError>;

struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn fail<T>(&self, kind: DecodeErrorKind) -> Result<T> {
        Err(DecodeError {
            kind,
            offset: self.pos,
        })
    }

    fn remaining(&self) -> usize {
        self.data.len() - self.pos
    }

    fn u8(&mut self) -> Result<u8> {
        match self.data.get(self.pos) {
            Some(&b) => {
                self.pos += 1;
                Ok(b)
            }
            None => self.fail(DecodeErrorKind::Truncated),
        }
    }

    fn bytes(&mut self, n: u64) -> Result<&'a [u8]> {
        if n > self.remaining() as u64 {
            return self.fail(DecodeErrorKind::LengthPastEnd);
        }
        let n = n as usize;
        let s = &self.data[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    /// Unsigned LEB128: at most 10 bytes, value < 2^64.
    fn uleb(&mut self) -> Result<u64> {
        let mut value: u64 = 0;
        for i in 0..10 {
            let b = self.u8()?;
            let low = (b & 0x7F) as u64;
            if i == 9 && low > 1 {
                return self.fail(DecodeErrorKind::LebOutOfRange);
            }
            value |= low << (7 * i);
            if b & 0x80 == 0 {
                return Ok(value);
            }
        }
        self.fail(DecodeErrorKind::LebTooLong)
    }

    /// Signed LEB128: at most 10 bytes, value fits in i64.
    fn sleb(&mut self) -> Result<i64> {
        let mut value: i64 = 0;
        for i in 0..10 {
            let b = self.u8()?;
            let low = (b & 0x7F) as i64;
            if i == 9 {
                // Bits 63 and up: only a pure sign extension keeps the value in i64.
                if b & 0x80 != 0 {
                    return self.fail(DecodeErrorKind::LebTooLong);
                }
                return match low {
                    0 => Ok(value),
                    0x7F => Ok(value | i64::MIN),
                    _ => self.fail(DecodeErrorKind::LebOutOfRange),
                };
            }
            value |= low << (7 * i);
            if b & 0x80 == 0 {
                // Sign-extend from the last byte's bit 6.
                let shift = 7 * (i + 1);
                if shift < 64 && b & 0x40 != 0 {
                    value |= -1i64 << shift;
                }
                return Ok(value);
            }
        }
        self.fail(DecodeErrorKind::LebTooLong)
    }

    /// A count of items that each take at least one byte: bounded by the bytes left.
    fn count(&mut self) -> Result<usize> {
        let n = self.uleb()?;
        if n > self.remaining() as u64 {
            return self.fail(DecodeErrorKind::LengthPastEnd);
        }
        Ok(n as usize)
    }

    fn u32(&mut self) -> Result<u32> {
        let n = self.uleb()?;
        match u32::try_from(n) {
            Ok(n) => Ok(n),
            Err(_) => self.fail(DecodeErrorKind::LebOutOfRange),
        }
    }

    fn str(&mut self) -> Result<&'a str> {
        let n = self.uleb()?;
        let start = self.pos;
        let bytes = self.bytes(n)?;
        std::str::from_utf8(bytes).map_err(|_| DecodeError {
            kind: DecodeErrorKind::InvalidUtf8,
            offset: start,
        })
    }
}

/// Decode a serialized module.
pub fn decode_module(data: &[u8]) -> Result<Module> {
    let mut r = Reader { data, pos: 0 };
    if data.len() < MAGIC.len() || &data[..MAGIC.len()] != MAGIC {
        return r.fail(DecodeErrorKind::BadMagic);
    }
    r.pos = MAGIC.len();
    let version = u16::from_le_bytes([r.u8()?, r.u8()?]);
    if version != VERSION {
        r.pos -= 2;
        return r.fail(DecodeErrorKind::UnknownVersion(version));
    }
    let source = r.str()?.to_string();
    let n_codes = r.count()?;
    if n_codes == 0 {
        return r.fail(DecodeErrorKind::NoCode);
    }
    let mut codes = Vec::with_capacity(n_codes);
    // Every Code but code 0 is named by exactly one Block constant (one parent each).
    let mut has_parent = vec![false; n_codes];
    let mut starts = Vec::with_capacity(n_codes);
    for index in 0..n_codes {
        starts.push(r.pos);
        codes.push(decode_code(&mut r, index, n_codes, &mut has_parent)?);
    }
    if r.remaining() != 0 {
        return r.fail(DecodeErrorKind::TrailingBytes);
    }
    if let Some(orphan) = (1..n_codes).find(|&i| !has_parent[i]) {
        return Err(DecodeError {
            kind: DecodeErrorKind::OrphanCode,
            offset: starts[orphan],
        });
    }
    Ok(Module { source, codes })
}

fn decode_code(
    r: &mut Reader<'_>,
    index: usize,
    n_codes: usize,
    has_parent: &mut [bool],
) -> Result<Code> {
    let name = r.str()?.to_string();

    let n_consts = r.count()?;
    let mut consts = Vec::with_capacity(n_consts);
    for _ in 0..n_consts {
        let at = r.pos;
        let c = match r.u8()? {
            CONST_INT => Const::Int(r.sleb()?),
            CONST_BIGINT => {
                let sign = r.u8()?;
                if sign > 1 {
                    r.pos -= 1;
                    return r.fail(DecodeErrorKind::BadSign(sign));
                }
                let n = r.uleb()?;
                let mag = r.bytes(n)?;
                if mag.last() == Some(&0) {
                    return r.fail(DecodeErrorKind::TrailingZeroMagnitude);
                }
                let sign = if sign == 1 { Sign::Minus } else { Sign::Plus };
                // A lax writer may use this form for an Int that fits in 64 bits (zero, say):
                // it decodes as the Int it is, so equal modules compare equal.
                let b = BigInt::from_bytes_le(sign, mag);
                match i64::try_from(&b) {
                    Ok(i) => Const::Int(i),
                    Err(_) => Const::BigInt(b),
                }
            }
            CONST_STR => Const::Str(r.str()?.to_string()),
            CONST_BLOCK => {
                let target = r.uleb()?;
                // Block literals nest, so a block names a later Code; this forbids cycles.
                if target == 0 || target <= index as u64 || target >= n_codes as u64 {
                    return Err(DecodeError {
                        kind: DecodeErrorKind::BadBlockIndex,
                        offset: at,
                    });
                }
                if std::mem::replace(&mut has_parent[target as usize], true) {
                    return Err(DecodeError {
                        kind: DecodeErrorKind::SharedCode,
                        offset: at,
                    });
                }
                Const::Block(target as u32)
            }
            tag => {
                r.pos = at;
                return r.fail(DecodeErrorKind::UnknownConstTag(tag));
            }
        };
        consts.push(c);
    }

    let n_paths = r.count()?;
    let mut paths = Vec::with_capacity(n_paths);
    for _ in 0..n_paths {
        let at = r.pos;
        let byte = r.u8()?;
        let Some(root) = Root::from_u8(byte) else {
            r.pos = at;
            return r.fail(DecodeErrorKind::UnknownPathRoot(byte));
        };
        let n = r.count()?;
        if root == Root::Store && n == 0 {
            return Err(DecodeError {
                kind: DecodeErrorKind::EmptyStorePath,
                offset: at,
            });
        }
        let mut components = Vec::with_capacity(n);
        for _ in 0..n {
            let comp_at = r.pos;
            let comp = r.str()?;
            if comp.is_empty() || comp.contains('.') {
                return Err(DecodeError {
                    kind: DecodeErrorKind::BadComponent,
                    offset: comp_at,
                });
            }
            components.push(Rc::from(comp));
        }
        paths.push(Path::new(root, components));
    }

    let n_instrs = r.count()?;
    let mut instrs = Vec::with_capacity(n_instrs);
    for _ in 0..n_instrs {
        let at = r.pos;
        let byte = r.u8()?;
        let Some(op) = Opcode::from_u8(byte) else {
            r.pos = at;
            return r.fail(DecodeErrorKind::UnknownOpcode(byte));
        };
        let operand_at = r.pos;
        let operand = r.uleb()?;
        let fail_at = |kind| Err(DecodeError { kind, offset: operand_at });
        match op.operand_kind() {
            OperandKind::Const => {
                if operand >= consts.len() as u64 {
                    return fail_at(DecodeErrorKind::ConstIndexOutOfRange);
                }
                if op == Opcode::ExecConst && !matches!(consts[operand as usize], Const::Block(_)) {
                    return fail_at(DecodeErrorKind::ExecConstNotBlock);
                }
            }
            OperandKind::Path => {
                if operand >= paths.len() as u64 {
                    return fail_at(DecodeErrorKind::PathIndexOutOfRange);
                }
                if Some(paths[operand as usize].root) != op.path_root() {
                    return fail_at(DecodeErrorKind::RootMismatch);
                }
            }
        }
        let pos_at = r.pos;
        let line = r.u32()?;
        let col = r.u32()?;
        if line == 0 || col == 0 {
            return Err(DecodeError {
                kind: DecodeErrorKind::ZeroPosition,
                offset: pos_at,
            });
        }
        instrs.push(Instr {
            op,
            operand: operand as u32,
            line,
            col,
        });
    }
    Ok(Code {
        name,
        consts,
        paths,
        instrs,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encode::{assemble, encode_module};
    use proptest::prelude::*;

    /// Raw module bytes: header, source "", the given number of codes, then `body`.
    fn raw(n_codes: u8, body: &[u8]) -> Vec<u8> {
        let mut v = MAGIC.to_vec();
        v.extend_from_slice(&1u16.to_le_bytes());
        v.push(0); // source ""
        v.push(n_codes);
        v.extend_from_slice(body);
        v
    }

    /// One code: name "c", then consts, paths and instrs given as already-encoded sections.
    fn code(consts: &[u8], paths: &[u8], instrs: &[u8]) -> Vec<u8> {
        let mut v = vec![1, b'c'];
        v.extend_from_slice(consts);
        v.extend_from_slice(paths);
        v.extend_from_slice(instrs);
        v
    }

    fn kind(bytes: &[u8]) -> DecodeErrorKind {
        decode_module(bytes).expect_err("must be rejected").kind
    }

    #[test]
    fn a_minimal_module_decodes() {
        // consts: [Int 5], paths: [Store "a"], instrs: CONST 0 @1:1, SET_STORE 0 @1:3
        let c = code(&[1, 0x00, 5], &[1, 0, 1, 1, b'a'], &[2, 0, 0, 1, 1, 5, 0, 1, 3]);
        let m = decode_module(&raw(1, &c)).unwrap();
        assert_eq!(m.codes.len(), 1);
        assert_eq!(m.codes[0].consts, vec![Const::Int(5)]);
        assert_eq!(m.codes[0].paths[0].display, "a");
        assert_eq!(
            m.codes[0].instrs[1],
            Instr { op: Opcode::SetStore, operand: 0, line: 1, col: 3 }
        );
    }

    #[test]
    fn assembled_modules_round_trip() {
        let src = "{ !_.n _.n 1 >- } !dec\n(hi \\28\\) !s 123456789012345678901234567890 -5 >{ 1 } _. !_.x. _";
        let m = assemble(src).unwrap();
        let bytes = encode_module(&m);
        assert_eq!(decode_module(&bytes).unwrap(), m);
        assert_eq!(m.codes[0].paths.last().unwrap().display, "_");
        assert!(matches!(m.codes[0].consts[2], Const::BigInt(_)));
    }

    #[test]
    fn leb128_edges() {
        let decode_sleb = |bytes: &[u8]| {
            let mut r = Reader { data: bytes, pos: 0 };
            r.sleb()
        };
        let decode_uleb = |bytes: &[u8]| {
            let mut r = Reader { data: bytes, pos: 0 };
            r.uleb()
        };
        assert_eq!(decode_uleb(&[0xFF; 9].iter().copied().chain([0x01]).collect::<Vec<_>>()), Ok(u64::MAX));
        assert_eq!(decode_uleb(&[0xFF; 9].iter().copied().chain([0x02]).collect::<Vec<_>>()).unwrap_err().kind, DecodeErrorKind::LebOutOfRange);
        assert_eq!(decode_uleb(&[0x80; 10].iter().copied().chain([0x00]).collect::<Vec<_>>()).unwrap_err().kind, DecodeErrorKind::LebTooLong);
        for i in [0i64, 1, -1, 63, 64, -64, -65, i64::MAX, i64::MIN, 1 << 62, -(1 << 62)] {
            let mut out = Vec::new();
            let mut n = i;
            loop {
                let byte = (n & 0x7F) as u8;
                n >>= 7;
                if (n == 0 && byte & 0x40 == 0) || (n == -1 && byte & 0x40 != 0) {
                    out.push(byte);
                    break;
                }
                out.push(byte | 0x80);
            }
            assert_eq!(decode_sleb(&out), Ok(i), "{i}");
        }
        // i64::MAX + 1 in ten bytes: tenth byte 0x01 is neither 0x00 nor 0x7F.
        let too_big: Vec<u8> = [0x80u8; 9].iter().copied().chain([0x01]).collect();
        assert_eq!(decode_sleb(&too_big).unwrap_err().kind, DecodeErrorKind::LebOutOfRange);
    }

    #[test]
    fn every_listed_rejection_is_an_error() {
        use DecodeErrorKind as K;
        let ok_code = code(&[0], &[0], &[0]);
        // wrong magic, unknown version, truncated input, trailing bytes
        assert_eq!(kind(b"SOMAXX\x01\x00\x00\x00"), K::BadMagic);
        assert_eq!(kind(b"SOM"), K::BadMagic);
        let mut v2 = raw(1, &ok_code);
        v2[6] = 2;
        assert_eq!(kind(&v2), K::UnknownVersion(2));
        let full = raw(1, &ok_code);
        assert_eq!(kind(&full[..full.len() - 1]), K::Truncated);
        let mut extra = full.clone();
        extra.push(0);
        assert_eq!(kind(&extra), K::TrailingBytes);
        // LEB too long / out of range (as the const count)
        let long: Vec<u8> = [1, b'c'].iter().copied().chain([0x80; 10]).chain([0]).collect();
        assert_eq!(kind(&raw(1, &long)), K::LebTooLong);
        let int_oor = code(&[1, 0x00, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01], &[0], &[0]);
        assert_eq!(kind(&raw(1, &int_oor)), K::LebOutOfRange);
        // a length that runs past the end; invalid UTF-8
        assert_eq!(kind(&raw(1, &[9, b'c'])), K::LengthPastEnd);
        assert_eq!(kind(&raw(1, &code(&[1, 0x02, 2, 0xC3, 0x28], &[0], &[0]))), K::InvalidUtf8);
        assert_eq!(kind(&raw(1, &code(&[200], &[0], &[0]))), K::LengthPastEnd, "count beyond input");
        // unknown const tag, unknown path root, unknown opcode
        assert_eq!(kind(&raw(1, &code(&[1, 0x04], &[0], &[0]))), K::UnknownConstTag(4));
        assert_eq!(kind(&raw(1, &code(&[0], &[1, 2, 1, 1, b'a'], &[0]))), K::UnknownPathRoot(2));
        assert_eq!(kind(&raw(1, &code(&[1, 0, 1], &[0], &[1, 12, 0, 1, 1]))), K::UnknownOpcode(12));
        // sign byte other than 0/1; magnitude with a trailing zero byte
        assert_eq!(kind(&raw(1, &code(&[1, 0x01, 2, 1, 5], &[0], &[0]))), K::BadSign(2));
        assert_eq!(kind(&raw(1, &code(&[1, 0x01, 0, 2, 5, 0], &[0], &[0]))), K::TrailingZeroMagnitude);
        // operand out of range: const index, path index
        assert_eq!(kind(&raw(1, &code(&[1, 0, 1], &[0], &[1, 0, 1, 1, 1]))), K::ConstIndexOutOfRange);
        assert_eq!(kind(&raw(1, &code(&[0], &[1, 0, 1, 1, b'a'], &[1, 1, 1, 1, 1]))), K::PathIndexOutOfRange);
        // root mismatch both ways
        assert_eq!(kind(&raw(1, &code(&[0], &[1, 1, 1, 1, b'a'], &[1, 1, 0, 1, 1]))), K::RootMismatch);
        assert_eq!(kind(&raw(1, &code(&[0], &[1, 0, 1, 1, b'a'], &[1, 2, 0, 1, 1]))), K::RootMismatch);
        // Store path with no components; empty component; component with '.'
        assert_eq!(kind(&raw(1, &code(&[0], &[1, 0, 0], &[0]))), K::EmptyStorePath);
        assert_eq!(kind(&raw(1, &code(&[0], &[1, 1, 1, 0], &[0]))), K::BadComponent);
        assert_eq!(kind(&raw(1, &code(&[0], &[1, 0, 1, 3, b'a', b'.', b'b'], &[0]))), K::BadComponent);
        // an empty Register path is fine (`_`)
        assert!(decode_module(&raw(1, &code(&[0], &[1, 1, 0], &[1, 2, 0, 1, 1]))).is_ok());
        // EXEC_CONST of a non-Block
        assert_eq!(kind(&raw(1, &code(&[1, 0, 1], &[0], &[1, 11, 0, 1, 1]))), K::ExecConstNotBlock);
        // Block naming code 0, itself, an earlier code, or a code that does not exist
        let block_to = |i: u8| code(&[1, 0x03, i], &[0], &[0]);
        assert_eq!(kind(&raw(1, &block_to(0))), K::BadBlockIndex);
        assert_eq!(kind(&raw(1, &block_to(1))), K::BadBlockIndex, "index past n_codes");
        let mut two = block_to(1);
        two.extend(block_to(1));
        assert_eq!(kind(&raw(2, &two)), K::BadBlockIndex, "code 1 naming itself");
        let mut three = block_to(1);
        three.extend(ok_code.clone());
        three.extend(block_to(1));
        assert_eq!(kind(&raw(3, &three)), K::BadBlockIndex, "code 2 naming earlier code 1");
        let mut ok_two = block_to(1);
        ok_two.extend(ok_code.clone());
        assert!(decode_module(&raw(2, &ok_two)).is_ok());
        // every Code but code 0 has exactly one parent: no orphans, no sharing
        let mut orphan = ok_code.clone();
        orphan.extend(ok_code.clone());
        let e = decode_module(&raw(2, &orphan)).expect_err("orphan code 1");
        assert_eq!(e.kind, K::OrphanCode);
        assert_eq!(e.offset, 10 + ok_code.len(), "offset: where the orphan starts");
        let shared = code(&[2, 0x03, 1, 0x03, 1], &[0], &[0]);
        let mut two_parents = shared.clone();
        two_parents.extend(ok_code.clone());
        assert_eq!(kind(&raw(2, &two_parents)), K::SharedCode, "two constants of one code");
        assert_eq!(kind(&raw(0, &[])), K::NoCode, "a module must hold the program");
        // code 0 names 2, code 1 names 2 as well (and nobody names 1)
        let mut c2_named_twice = block_to(2);
        c2_named_twice.extend(block_to(2));
        c2_named_twice.extend(ok_code.clone());
        assert_eq!(kind(&raw(3, &c2_named_twice)), K::SharedCode, "two parents in two codes");
        // a line or column of 0
        assert_eq!(kind(&raw(1, &code(&[1, 0, 1], &[0], &[1, 0, 0, 0, 1]))), K::ZeroPosition);
        assert_eq!(kind(&raw(1, &code(&[1, 0, 1], &[0], &[1, 0, 0, 1, 0]))), K::ZeroPosition);
    }

    #[test]
    fn big_form_of_an_int_that_fits_decodes_as_an_int() {
        // Found by `mutations_of_a_valid_module_never_panic`: one inserted 0x01 turns the Int
        // constant 0 into the big form of 0, which must decode (and re-encode) as `Int(0)`.
        let mut bytes = sample_module();
        let at = 2165836757619097395 % (bytes.len() + 1);
        bytes.insert(at, 1);
        let m = decode_module(&bytes).expect("still a valid module");
        assert!(m.codes.iter().flat_map(|c| &c.consts).all(|c| match c {
            Const::BigInt(b) => i64::try_from(b).is_err(),
            _ => true,
        }));
        assert_eq!(decode_module(&encode_module(&m)).unwrap(), m);
    }

    fn sample_module() -> Vec<u8> {
        let src = "{ !_.n _.n 0 >< { _.n 1 >- >fact _.n >* } { 1 } >choose >chain } !fact\n\
                   20 >fact (done) !s _.x. !_.y. 99999999999999999999999 -3";
        encode_module(&assemble(src).unwrap())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]
        #[test]
        fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
            let _ = decode_module(&bytes);
            let mut with_header = MAGIC.to_vec();
            with_header.extend_from_slice(&[1, 0]);
            with_header.extend_from_slice(&bytes);
            let _ = decode_module(&with_header);
        }

        #[test]
        fn mutations_of_a_valid_module_never_panic(
            edits in prop::collection::vec((any::<usize>(), any::<u8>(), 0u8..3), 1..6)
        ) {
            let mut bytes = sample_module();
            for (at, b, how) in edits {
                let at = at % (bytes.len() + 1);
                match how {
                    0 if at < bytes.len() => bytes[at] = b,
                    1 => bytes.insert(at, b),
                    _ => { if at < bytes.len() { bytes.remove(at); } }
                }
            }
            if let Ok(m) = decode_module(&bytes) {
                // Whatever decodes re-encodes to something that decodes to the same module.
                prop_assert_eq!(decode_module(&encode_module(&m)).unwrap(), m);
            }
        }
    }
}
