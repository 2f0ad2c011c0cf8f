//! Writing modules in the serialized form of docs/bytecode.md, plus a tiny assembler from
//! SOMA source text to a [`Module`].
//!
//! This exists so Rust tests and benches can build bytecode without Python. The assembler
//! handles the statement forms of the language (ints, `(strings)` with `\HEX\` escapes,
//! `{blocks}`, paths, `>`/`!` modifiers, reference paths, `)` comments) but it is **not** the
//! product's compiler: it reports problems as plain strings and does no validation beyond what
//! it needs to produce well-formed bytecode.

use crate::decode::{Code, Const, Instr, Module, Path, MAGIC, VERSION};
use crate::format::{CONST_BIGINT, CONST_BLOCK, CONST_INT, CONST_STR};
use crate::opcodes::{Opcode, Root};
use num_bigint::{BigInt, Sign};

fn uleb(out: &mut Vec<u8>, mut n: u64) {
    loop {
        let byte = (n & 0x7F) as u8;
        n >>= 7;
        if n == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

fn sleb(out: &mut Vec<u8>, mut n: i64) {
    loop {
        let byte = (n & 0x7F) as u8;
        n >>= 7;
        if (n == 0 && byte & 0x40 == 0) || (n == -1 && byte & 0x40 != 0) {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

fn string(out: &mut Vec<u8>, s: &str) {
    uleb(out, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

/// Serialize a module (smallest form for every Int, as the Python writer does).
pub fn encode_module(m: &Module) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&VERSION.to_le_bytes());
    string(&mut out, &m.source);
    uleb(&mut out, m.codes.len() as u64);
    for code in &m.codes {
        string(&mut out, &code.name);
        uleb(&mut out, code.consts.len() as u64);
        for c in &code.consts {
            match c {
                Const::Int(i) => {
                    out.push(CONST_INT);
                    sleb(&mut out, *i);
                }
                Const::BigInt(b) => match i64::try_from(b) {
                    Ok(i) => {
                        out.push(CONST_INT);
                        sleb(&mut out, i);
                    }
                    Err(_) => {
                        let (sign, mag) = b.to_bytes_le();
                        out.push(CONST_BIGINT);
                        out.push(u8::from(sign == Sign::Minus));
                        uleb(&mut out, mag.len() as u64);
                        out.extend_from_slice(&mag);
                    }
                },
                Const::Str(s) => {
                    out.push(CONST_STR);
                    string(&mut out, s);
                }
                Const::Block(i) => {
                    out.push(CONST_BLOCK);
                    uleb(&mut out, *i as u64);
                }
            }
        }
        uleb(&mut out, code.paths.len() as u64);
        for p in &code.paths {
            out.push(p.root as u8);
            uleb(&mut out, p.components.len() as u64);
            for c in &p.components {
                string(&mut out, c);
            }
        }
        uleb(&mut out, code.instrs.len() as u64);
        for ins in &code.instrs {
            out.push(ins.op as u8);
            uleb(&mut out, ins.operand as u64);
            uleb(&mut out, ins.line as u64);
            uleb(&mut out, ins.col as u64);
        }
    }
    out
}

struct Lexer<'a> {
    chars: Vec<char>,
    pos: usize,
    line: u32,
    col: u32,
    _src: &'a str,
}

#[derive(Debug)]
enum Tok {
    Open,
    Close,
    Int(BigInt),
    Str(String),
    /// `>` / `!` modifier, path components, trailing dot.
    Path(Option<char>, Vec<String>, bool),
    /// `>{`
    ExecOpen,
}

impl<'a> Lexer<'a> {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }
    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += 1;
        if c == '\n' {
            self.line += 1;
            self.col = 1;
        } else {
            self.col += 1;
        }
        Some(c)
    }
    fn ends_token(c: Option<char>) -> bool {
        matches!(c, None | Some('{') | Some('}')) || c.is_some_and(char::is_whitespace)
    }

    fn next(&mut self) -> Result<Option<(Tok, u32, u32)>, String> {
        loop {
            match self.peek() {
                None => return Ok(None),
                Some(c) if c.is_whitespace() => {
                    self.bump();
                }
                Some(')') => {
                    while !matches!(self.peek(), None | Some('\n')) {
                        self.bump();
                    }
                }
                Some(_) => break,
            }
        }
        let (line, col) = (self.line, self.col);
        let c = self.bump().unwrap();
        let tok = match c {
            '{' => Tok::Open,
            '}' => Tok::Close,
            '(' => {
                let mut s = String::new();
                loop {
                    match self.bump() {
                        None => return Err(format!("{line}:{col}: unterminated string")),
                        Some(')') => break,
                        Some('\\') => {
                            let mut hex = String::new();
                            loop {
                                match self.bump() {
                                    Some('\\') => break,
                                    Some(h) => hex.push(h),
                                    None => return Err("unterminated escape".into()),
                                }
                            }
                            let cp = u32::from_str_radix(&hex, 16).map_err(|e| e.to_string())?;
                            s.push(char::from_u32(cp).ok_or("bad code point")?);
                        }
                        Some(ch) => s.push(ch),
                    }
                }
                Tok::Str(s)
            }
            _ => {
                let mut text = String::from(c);
                while !Self::ends_token(self.peek()) {
                    text.push(self.bump().unwrap());
                }
                let (modifier, body) = match c {
                    '>' | '!' if text.len() > 1 => (Some(c), &text[1..]),
                    '>' if text.len() == 1 && self.peek() == Some('{') => {
                        self.bump();
                        return Ok(Some((Tok::ExecOpen, line, col)));
                    }
                    _ => (None, &text[..]),
                };
                let digits = body.strip_prefix(['+', '-']).unwrap_or(body);
                if modifier.is_none() && !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
                    let v: BigInt = body.trim_start_matches('+').parse().map_err(|e| format!("{e:?}"))?;
                    Tok::Int(v)
                } else {
                    let is_ref = body.len() > 1 && body.ends_with('.');
                    let body = if is_ref { &body[..body.len() - 1] } else { body };
                    let comps: Vec<String> = body.split('.').map(str::to_string).collect();
                    if comps.iter().any(String::is_empty) {
                        return Err(format!("{line}:{col}: empty path component in {text:?}"));
                    }
                    Tok::Path(modifier, comps, is_ref)
                }
            }
        };
        Ok(Some((tok, line, col)))
    }
}

#[derive(Default)]
struct Builder {
    code: usize,
    exec_open: bool,
    line: u32,
    col: u32,
}

/// Assemble SOMA source into a module (code 0 is the program, blocks in preorder).
pub fn assemble(source: &str) -> Result<Module, String> {
    let mut lx = Lexer {
        chars: source.chars().collect(),
        pos: 0,
        line: 1,
        col: 1,
        _src: source,
    };
    let mut codes = vec![Code {
        name: "<program>".into(),
        consts: vec![],
        paths: vec![],
        instrs: vec![],
    }];
    let mut stack = vec![Builder::default()];
    fn emit(codes: &mut [Code], at: usize, op: Opcode, operand: usize, line: u32, col: u32) {
        codes[at].instrs.push(Instr {
            op,
            operand: operand as u32,
            line,
            col,
        });
    }
    fn add_const(codes: &mut [Code], at: usize, c: Const) -> usize {
        codes[at].consts.push(c);
        codes[at].consts.len() - 1
    }
    while let Some((tok, line, col)) = lx.next()? {
        let cur = stack.last().unwrap().code;
        match tok {
            Tok::Open | Tok::ExecOpen => {
                codes.push(Code {
                    name: format!("<block {line}:{col}>"),
                    consts: vec![],
                    paths: vec![],
                    instrs: vec![],
                });
                stack.push(Builder {
                    code: codes.len() - 1,
                    exec_open: matches!(tok, Tok::ExecOpen),
                    line,
                    col,
                });
            }
            Tok::Close => {
                if stack.len() == 1 {
                    return Err(format!("{line}:{col}: unmatched }}"));
                }
                let b = stack.pop().unwrap();
                let parent = stack.last().unwrap().code;
                let k = add_const(&mut codes, parent, Const::Block(b.code as u32));
                let op = if b.exec_open { Opcode::ExecConst } else { Opcode::Const };
                emit(&mut codes, parent, op, k, b.line, b.col);
            }
            Tok::Int(v) => {
                let c = match i64::try_from(&v) {
                    Ok(i) => Const::Int(i),
                    Err(_) => Const::BigInt(v),
                };
                let k = add_const(&mut codes, cur, c);
                emit(&mut codes, cur, Opcode::Const, k, line, col);
            }
            Tok::Str(s) => {
                let k = add_const(&mut codes, cur, Const::Str(s));
                emit(&mut codes, cur, Opcode::Const, k, line, col);
            }
            Tok::Path(modifier, comps, is_ref) => {
                let reg = comps[0] == "_";
                let (root, comps) = if reg {
                    (Root::Register, comps[1..].to_vec())
                } else {
                    (Root::Store, comps)
                };
                let path = Path::new(root, comps.into_iter().map(std::rc::Rc::from).collect());
                codes[cur].paths.push(path);
                let k = codes[cur].paths.len() - 1;
                let op = match (modifier, is_ref, reg) {
                    (None, false, false) => Opcode::LoadStore,
                    (None, false, true) => Opcode::LoadReg,
                    (None, true, false) => Opcode::RefStore,
                    (None, true, true) => Opcode::RefReg,
                    (Some('!'), false, false) => Opcode::SetStore,
                    (Some('!'), false, true) => Opcode::SetReg,
                    (Some('!'), true, false) => Opcode::SetrefStore,
                    (Some('!'), true, true) => Opcode::SetrefReg,
                    (Some(_), false, false) => Opcode::ExecStore,
                    (Some(_), false, true) => Opcode::ExecReg,
                    (Some(_), true, _) => return Err(format!("{line}:{col}: cannot execute a reference path")),
                };
                emit(&mut codes, cur, op, k, line, col);
            }
        }
    }
    if stack.len() != 1 {
        return Err("unterminated block".into());
    }
    Ok(Module {
        source: String::new(),
        codes,
    })
}

/// `assemble` then `encode_module`.
pub fn assemble_bytes(source: &str) -> Result<Vec<u8>, String> {
    assemble(source).map(|m| encode_module(&m))
}
