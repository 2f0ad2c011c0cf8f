//! Structured programs for the `execute` target: an `arbitrary`-derived description that
//! always assembles into a module the decoder accepts (the Codes form a tree: every Code but
//! code 0 is named by exactly one Block constant of an earlier Code; operands in range, roots
//! matching opcodes, positions >= 1), biased towards the builtins, a few
//! shared variable names and the Int boundaries where the JIT's inline paths switch to BigInt.

use arbitrary::Arbitrary;
use num_bigint::{BigInt, Sign};
use soma_runtime::decode::{Code, Const, Instr, Module, Path};
use soma_runtime::opcodes::{Opcode, Root};
use std::rc::Rc;

/// Store paths of builtins (as components).
const BUILTINS: &[&[&str]] = &[
    &["+"],
    &["-"],
    &["*"],
    &["/"],
    &["%"],
    &["<"],
    &["choose"],
    &["chain"],
    &["block"],
    &["print"],
    &["concat"],
    &["toString"],
    &["toInt"],
    &["isVoid"],
    &["isNil"],
    &["readLine"],
    &["use"],
    &["debug", "type"],
    &["debug", "error"],
    &["debug", "chain"],
    &["debug", "choose"],
    &["debug", "graph", "dump"],
    &["debug", "graph", "draw"],
    &["True"],
    &["False"],
    &["Nil"],
    &["Void"],
];

/// Variable names (shared between Store and Register paths, and with builtin prefixes).
const NAMES: &[&str] = &["a", "b", "n", "x", "self", "next", "debug", "k0", "+", "é"];

/// Interesting Ints: around 0, the i32/i64 edges and the NaN-box small-int edges.
const INTS: &[i64] = &[
    0,
    1,
    -1,
    2,
    3,
    7,
    10,
    100,
    i32::MAX as i64,
    i32::MIN as i64,
    (1 << 47) - 1,
    -(1 << 47),
    1 << 47,
    (1 << 48) - 1,
    -(1 << 48),
    (1 << 50) - 1,
    -(1 << 50),
    (1 << 51) - 1,
    -(1 << 51),
    1 << 51,
    (1 << 52) - 1,
    3_037_000_499,
    -3_037_000_500,
    i64::MAX,
    i64::MIN,
    i64::MAX - 1,
    i64::MIN + 1,
];

const STRS: &[&str] = &["", "a", "abc", "12", "-3", " 7 ", "1_000", "0x10", "x", "é", "\u{1F600}", "Void"];

#[derive(Arbitrary, Debug)]
pub enum IntSpec {
    Table(u8),
    Small(i8),
    Any(i64),
    /// A BigInt beyond i64 (sign, little-endian magnitude; normalised to the minimal form).
    Big(bool, Vec<u8>),
}

#[derive(Arbitrary, Debug)]
pub enum StrSpec {
    Table(u8),
    Any(String),
}

#[derive(Arbitrary, Debug)]
pub enum PathSpec {
    Builtin(u8),
    Store(Vec<u8>),
    Register(Vec<u8>),
}

#[derive(Arbitrary, Debug)]
pub enum Stmt {
    Int(IntSpec),
    Str(StrSpec),
    /// A block literal: the next child Code not yet placed (an Int when there is none).
    Block(u8),
    /// `>{...}`: the same, executed.
    ExecBlock(u8),
    Load(PathSpec),
    Ref(PathSpec),
    Set(PathSpec),
    SetRef(PathSpec),
    Exec(PathSpec),
    /// `>b` for a builtin: the common case, weighted up.
    Call(u8),
}

#[derive(Arbitrary, Debug)]
pub struct Program {
    /// Code 0 is the program; the rest are block bodies.
    pub codes: Vec<Vec<Stmt>>,
    /// `parents[i - 1] % i`: the Code whose literal Code `i` is.
    pub parents: Vec<u8>,
    /// How the JIT run compiles (see `JitMode::from_byte`).
    pub mode: u8,
}

const MAX_CODES: usize = 8;
const MAX_INSTRS: usize = 40;

fn int_const(spec: &IntSpec) -> Const {
    match spec {
        IntSpec::Table(i) => Const::Int(INTS[*i as usize % INTS.len()]),
        IntSpec::Small(i) => Const::Int(*i as i64),
        IntSpec::Any(i) => Const::Int(*i),
        IntSpec::Big(neg, mag) => {
            let mag = &mag[..mag.len().min(32)];
            let b = BigInt::from_bytes_le(if *neg { Sign::Minus } else { Sign::Plus }, mag);
            match i64::try_from(&b) {
                Ok(i) => Const::Int(i),
                Err(_) => Const::BigInt(b),
            }
        }
    }
}

fn path(spec: &PathSpec, want: Root) -> Path {
    let comps: Vec<Rc<str>> = match spec {
        PathSpec::Builtin(i) => BUILTINS[*i as usize % BUILTINS.len()]
            .iter()
            .map(|c| Rc::from(*c))
            .collect(),
        PathSpec::Store(c) | PathSpec::Register(c) => c
            .iter()
            .take(3)
            .map(|&n| Rc::from(NAMES[n as usize % NAMES.len()]))
            .collect(),
    };
    let comps = if want == Root::Store && comps.is_empty() {
        vec![Rc::from("a")]
    } else {
        comps
    };
    Path::new(want, comps)
}

fn root_of(spec: &PathSpec) -> Root {
    match spec {
        PathSpec::Register(_) => Root::Register,
        _ => Root::Store,
    }
}

impl Program {
    /// Assemble into a module the decoder accepts.
    pub fn to_module(&self) -> Module {
        let n = self.codes.len().clamp(1, MAX_CODES);
        let empty = Vec::new();
        let mut codes = Vec::with_capacity(n);
        let parent: Vec<usize> = (0..n)
            .map(|i| if i == 0 { 0 } else { *self.parents.get(i - 1).unwrap_or(&0) as usize % i })
            .collect();
        for ci in 0..n {
            let stmts = self.codes.get(ci).unwrap_or(&empty);
            let mut code = Code {
                name: if ci == 0 { "<program>".into() } else { format!("block{ci}") },
                consts: vec![],
                paths: vec![],
                instrs: vec![],
            };
            let mut children = (ci + 1..n).filter(|&c| parent[c] == ci);
            for (k, s) in stmts.iter().take(MAX_INSTRS).enumerate() {
                let (op, operand) = match s {
                    Stmt::Int(i) => {
                        code.consts.push(int_const(i));
                        (Opcode::Const, code.consts.len() - 1)
                    }
                    Stmt::Str(StrSpec::Table(i)) => {
                        code.consts.push(Const::Str(STRS[*i as usize % STRS.len()].into()));
                        (Opcode::Const, code.consts.len() - 1)
                    }
                    Stmt::Str(StrSpec::Any(s)) => {
                        code.consts.push(Const::Str(s.chars().take(16).collect()));
                        (Opcode::Const, code.consts.len() - 1)
                    }
                    Stmt::Block(j) | Stmt::ExecBlock(j) => match children.next() {
                        Some(target) => {
                            code.consts.push(Const::Block(target as u32));
                            let op = if matches!(s, Stmt::Block(_)) { Opcode::Const } else { Opcode::ExecConst };
                            (op, code.consts.len() - 1)
                        }
                        None => {
                            // Every child is placed: an Int instead.
                            code.consts.push(Const::Int(*j as i64));
                            (Opcode::Const, code.consts.len() - 1)
                        }
                    },
                    Stmt::Call(i) => {
                        code.paths.push(path(&PathSpec::Builtin(*i), Root::Store));
                        (Opcode::ExecStore, code.paths.len() - 1)
                    }
                    Stmt::Load(p) | Stmt::Ref(p) | Stmt::Set(p) | Stmt::SetRef(p) | Stmt::Exec(p) => {
                        let root = root_of(p);
                        code.paths.push(path(p, root));
                        let reg = root == Root::Register;
                        let op = match (s, reg) {
                            (Stmt::Load(_), false) => Opcode::LoadStore,
                            (Stmt::Load(_), true) => Opcode::LoadReg,
                            (Stmt::Ref(_), false) => Opcode::RefStore,
                            (Stmt::Ref(_), true) => Opcode::RefReg,
                            (Stmt::Set(_), false) => Opcode::SetStore,
                            (Stmt::Set(_), true) => Opcode::SetReg,
                            (Stmt::SetRef(_), false) => Opcode::SetrefStore,
                            (Stmt::SetRef(_), true) => Opcode::SetrefReg,
                            (_, false) => Opcode::ExecStore,
                            (_, true) => Opcode::ExecReg,
                        };
                        (op, code.paths.len() - 1)
                    }
                };
                code.instrs.push(Instr {
                    op,
                    operand: operand as u32,
                    line: ci as u32 + 1,
                    col: k as u32 + 1,
                });
            }
            // Children no statement placed still need their one Block constant (pushed by a
            // trailing CONST, so the block literal is on the AL at the end).
            for target in children {
                code.consts.push(Const::Block(target as u32));
                let k = code.instrs.len();
                code.instrs.push(Instr {
                    op: Opcode::Const,
                    operand: code.consts.len() as u32 - 1,
                    line: ci as u32 + 1,
                    col: k as u32 + 1,
                });
            }
            codes.push(code);
        }
        Module {
            source: "fuzz".into(),
            codes,
        }
    }
}
