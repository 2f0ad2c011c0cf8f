//! Which builtin a `BuiltinObj` is, and the Store names of the core builtins. Below the heap
//! (which stores the id in every builtin object) and the VM (which installs the core ones);
//! their semantics are in `builtins.rs`.

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
    DebugChain,
    DebugChoose,
    DebugGraphDump,
    DebugGraphDraw,
    /// `use`: loading extensions is the host's job; without a host every name is unknown.
    Use,
    /// A builtin implemented by the host (e.g. `use.python.call`); the number is the host's.
    Host(u32),
}

/// The builtins every VM starts with, at these Store paths.
pub const CORE_BUILTINS: &[(&str, BuiltinId)] = &[
    ("block", BuiltinId::Block),
    ("choose", BuiltinId::Choose),
    ("chain", BuiltinId::Chain),
    ("<", BuiltinId::Lt),
    ("+", BuiltinId::Add),
    ("-", BuiltinId::Sub),
    ("*", BuiltinId::Mul),
    ("/", BuiltinId::Div),
    ("%", BuiltinId::Mod),
    ("print", BuiltinId::Print),
    ("readLine", BuiltinId::ReadLine),
    ("concat", BuiltinId::Concat),
    ("toString", BuiltinId::ToString),
    ("toInt", BuiltinId::ToInt),
    ("isVoid", BuiltinId::IsVoid),
    ("isNil", BuiltinId::IsNil),
    ("debug.type", BuiltinId::DebugType),
    ("debug.error", BuiltinId::DebugError),
    ("debug.id", BuiltinId::DebugId),
    ("debug.al.dump", BuiltinId::DebugAlDump),
    ("debug.chain", BuiltinId::DebugChain),
    ("debug.choose", BuiltinId::DebugChoose),
    ("debug.graph.dump", BuiltinId::DebugGraphDump),
    ("debug.graph.draw", BuiltinId::DebugGraphDraw),
    ("use", BuiltinId::Use),
];
