//! The core builtins: identities and names (their semantics live in `ops.rs`).

/// Which builtin a `BuiltinObj` is.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
pub enum BuiltinId {
    Block,
    Choose,
    Chain,
    Lt,
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    Print,
    ReadLine,
    Concat,
    ToString,
    ToInt,
    IsVoid,
    IsNil,
    DebugType,
    DebugError,
    DebugId,
    DebugAlDump,
    /// A builtin implemented by the host (e.g. `use` in Python); the number is the host's.
    Host(u32),
}
