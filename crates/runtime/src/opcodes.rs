//! The opcode enum. `python/soma/opcodes.tsv` is the one definition; the test at the bottom
//! reads that file and fails when this enum drifts from it (number, name or operand kind).

/// What an instruction's operand indexes.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum OperandKind {
    /// Index into the Code's constant table.
    Const,
    /// Index into the Code's path table.
    Path,
}

/// Path root a path-operand opcode requires.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[repr(u8)]
pub enum Root {
    Store = 0,
    Register = 1,
}

/// One SOMA instruction kind (docs/bytecode.md).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
#[repr(u8)]
pub enum Opcode {
    Const = 0,
    LoadStore = 1,
    LoadReg = 2,
    RefStore = 3,
    RefReg = 4,
    SetStore = 5,
    SetReg = 6,
    SetrefStore = 7,
    SetrefReg = 8,
    ExecStore = 9,
    ExecReg = 10,
    ExecConst = 11,
}

impl Opcode {
    /// Every opcode, in number order.
    pub const ALL: [Opcode; 12] = [
        Opcode::Const,
        Opcode::LoadStore,
        Opcode::LoadReg,
        Opcode::RefStore,
        Opcode::RefReg,
        Opcode::SetStore,
        Opcode::SetReg,
        Opcode::SetrefStore,
        Opcode::SetrefReg,
        Opcode::ExecStore,
        Opcode::ExecReg,
        Opcode::ExecConst,
    ];

    pub fn from_u8(b: u8) -> Option<Opcode> {
        Opcode::ALL.get(b as usize).copied()
    }

    /// The name used by the table and the disassembler.
    pub fn name(self) -> &'static str {
        match self {
            Opcode::Const => "CONST",
            Opcode::LoadStore => "LOAD_STORE",
            Opcode::LoadReg => "LOAD_REG",
            Opcode::RefStore => "REF_STORE",
            Opcode::RefReg => "REF_REG",
            Opcode::SetStore => "SET_STORE",
            Opcode::SetReg => "SET_REG",
            Opcode::SetrefStore => "SETREF_STORE",
            Opcode::SetrefReg => "SETREF_REG",
            Opcode::ExecStore => "EXEC_STORE",
            Opcode::ExecReg => "EXEC_REG",
            Opcode::ExecConst => "EXEC_CONST",
        }
    }

    pub fn operand_kind(self) -> OperandKind {
        match self {
            Opcode::Const | Opcode::ExecConst => OperandKind::Const,
            _ => OperandKind::Path,
        }
    }

    /// For path opcodes, the root their path must have.
    pub fn path_root(self) -> Option<Root> {
        match self {
            Opcode::LoadStore
            | Opcode::RefStore
            | Opcode::SetStore
            | Opcode::SetrefStore
            | Opcode::ExecStore => Some(Root::Store),
            Opcode::LoadReg
            | Opcode::RefReg
            | Opcode::SetReg
            | Opcode::SetrefReg
            | Opcode::ExecReg => Some(Root::Register),
            Opcode::Const | Opcode::ExecConst => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TABLE: &str = include_str!("../../../python/soma/opcodes.tsv");

    #[test]
    fn enum_matches_python_opcode_table() {
        let mut seen = Vec::new();
        for line in TABLE.lines() {
            if line.starts_with('#') || line.trim().is_empty() {
                continue;
            }
            let cols: Vec<&str> = line.split('\t').collect();
            assert!(cols.len() >= 3, "malformed row: {line:?}");
            let number: u8 = cols[0].parse().expect("opcode number");
            let op = Opcode::from_u8(number)
                .unwrap_or_else(|| panic!("opcode {number} ({}) missing from the Rust enum", cols[1]));
            assert_eq!(op as u8, number);
            assert_eq!(op.name(), cols[1], "name of opcode {number}");
            let kind = match cols[2] {
                "const" => OperandKind::Const,
                "path" => OperandKind::Path,
                other => panic!("unknown operand kind {other:?}"),
            };
            assert_eq!(op.operand_kind(), kind, "operand kind of {}", cols[1]);
            seen.push(number);
        }
        let expected: Vec<u8> = Opcode::ALL.iter().map(|&o| o as u8).collect();
        assert_eq!(seen, expected, "the table and the enum list the same opcodes in order");
    }

    #[test]
    fn path_roots_follow_the_naming_rule() {
        for op in Opcode::ALL {
            match op.path_root() {
                Some(Root::Store) => assert!(op.name().ends_with("_STORE")),
                Some(Root::Register) => assert!(op.name().ends_with("_REG")),
                None => assert_eq!(op.operand_kind(), OperandKind::Const),
            }
        }
    }
}
