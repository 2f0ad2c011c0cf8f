//! SOMA errors as kept on the VM, and the message catalogue of docs/semantics.md.
//!
//! Every message text lives here, once, so all tiers that use this runtime say exactly the
//! same thing. Positions are filled in by whoever knows the failing instruction (the
//! executor, or JIT code through `soma_rt_error_at`): an error built by an operation starts
//! with line 0 and col 0, meaning "not positioned yet".

use std::fmt;

/// The Python exception class the bridge raises.
#[repr(i32)]
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum ErrorClass {
    Lex = 1,
    Parse = 2,
    Runtime = 3,
    /// A resource limit (memory, steps, time) or an interrupt stopped the program
    /// (`soma.LimitError`, a subclass of `soma.RuntimeError`).
    Limit = 4,
}

impl ErrorClass {
    pub fn name(self) -> &'static str {
        match self {
            ErrorClass::Lex => "LexError",
            ErrorClass::Parse => "ParseError",
            ErrorClass::Runtime => "RuntimeError",
            ErrorClass::Limit => "LimitError",
        }
    }
}

#[derive(Clone, PartialEq, Eq, Debug)]
pub struct SomaError {
    pub class: ErrorClass,
    pub message: String,
    /// 1-based; 0 while not positioned.
    pub line: u32,
    pub col: u32,
}

impl SomaError {
    pub fn runtime(message: impl Into<String>) -> SomaError {
        SomaError {
            class: ErrorClass::Runtime,
            message: message.into(),
            line: 0,
            col: 0,
        }
    }

    pub fn limit(message: impl Into<String>) -> SomaError {
        SomaError {
            class: ErrorClass::Limit,
            message: message.into(),
            line: 0,
            col: 0,
        }
    }

    /// The RuntimeError a caught Rust panic becomes (`internal error: MESSAGE`): a bug of the
    /// runtime, reported instead of unwinding into compiled code or the host.
    pub fn from_panic(payload: &(dyn std::any::Any + Send)) -> SomaError {
        let message = if let Some(s) = payload.downcast_ref::<&str>() {
            (*s).to_string()
        } else if let Some(s) = payload.downcast_ref::<String>() {
            s.clone()
        } else {
            "unknown panic".to_string()
        };
        SomaError::runtime(format!("internal error: {message}"))
    }

    pub fn is_positioned(&self) -> bool {
        self.line != 0
    }

    /// Set the position unless an inner instruction already did.
    pub fn at(mut self, line: u32, col: u32) -> SomaError {
        if !self.is_positioned() {
            self.line = line;
            self.col = col;
        }
        self
    }
}

impl fmt::Display for SomaError {
    /// `LINE:COL: message`, as `str(err)` in Python.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.line, self.col, self.message)
    }
}

impl std::error::Error for SomaError {}

pub type RtResult<T> = Result<T, SomaError>;

/// Constructors for every runtime error of the catalogue.
pub mod msg {
    use super::SomaError;
    use crate::value::Value;

    pub fn undefined_store(path: &str) -> SomaError {
        SomaError::runtime(format!(
            "Undefined Store path: '{path}'\n  Path was never set. Did you mean to:\n    - \
             Initialize it first: () !{path}\n    - Set a nested value: <value> !{path}.<child>\n    \
             - Check a different path?\n  Hint: Auto-vivified intermediate paths can be read \
             after writing to children.\n        Example: 42 !a.b.c creates 'a' and 'a.b' with \
             Void, which can be read."
        ))
    }
    /// `path` as written (`_.x`; the root `_` is spelled `_.`).
    pub fn undefined_register(path: &str) -> SomaError {
        let path = if path == "_" { "_." } else { path };
        SomaError::runtime(format!(
            "Undefined Register path: '{path}'\n  Register paths must be written before \
             reading.\n  Did you forget: <value> !{path}?"
        ))
    }
    pub fn store_underflow() -> SomaError {
        SomaError::runtime("AL underflow: store requires value on AL")
    }
    /// `>` of a non-Block `v` (Void and Nil count as an underflow, as in the reference).
    pub fn not_executable(v: Value) -> SomaError {
        if v.is_void() || v.is_nil() {
            SomaError::runtime(format!(
                "AL underflow: exec requires executable Block on AL, got {}",
                v.class_name()
            ))
        } else {
            SomaError::runtime(format!(
                "Cannot execute {}: only Blocks are executable",
                v.class_name()
            ))
        }
    }
    /// The underflow message of the core builtin at Store path `name` (each worded as the
    /// reference words it); any other word gets `AL underflow: NAME requires N value(s)`.
    pub fn builtin_underflow(name: &str, needs: usize) -> SomaError {
        let fixed = match name {
            "<" | "+" | "-" | "*" | "/" | "%" | "concat" => {
                return SomaError::runtime(format!("AL underflow: {name} requires 2 values"))
            }
            "print" | "debug.type" | "debug.id" => {
                return SomaError::runtime(format!("AL underflow: {name} requires 1 value"))
            }
            "debug.graph.dump" | "debug.graph.draw" => {
                return SomaError::runtime(format!("{name} requires a value on AL"))
            }
            "toString" => "AL underflow: to_string requires 1 value",
            "toInt" => "AL underflow: to_int requires 1 value",
            "isVoid" => "AL underflow: IsVoid requires 1 value",
            "isNil" => "AL underflow: IsNil requires 1 value",
            "choose" => "AL underflow: >choose requires 3 values",
            "chain" | "debug.chain" => "AL underflow: >chain requires 1 value (block)",
            "debug.choose" => "Choose requires [condition, true_block, false_block] on AL",
            "use" => "AL underflow: use requires 1 value (extension name)",
            _ => {
                let unit = if needs == 1 { "value" } else { "values" };
                return SomaError::runtime(format!("AL underflow: {name} requires {needs} {unit}"));
            }
        };
        SomaError::runtime(fixed)
    }
    pub fn arith_types(name: &str, a: Value, b: Value) -> SomaError {
        SomaError::runtime(format!(
            "Type error in {name}: expected int, got {} and {}",
            a.class_name(),
            b.class_name()
        ))
    }
    pub fn division_by_zero() -> SomaError {
        SomaError::runtime("Division by zero")
    }
    pub fn modulo_by_zero() -> SomaError {
        SomaError::runtime("Modulo by zero")
    }
    /// `a < b` on anything but two Ints or two Strs.
    pub fn compare_types(a: Value, b: Value) -> SomaError {
        let (ta, tb) = (a.class_name(), b.class_name());
        if ta != tb {
            SomaError::runtime(format!("Type mismatch in <: cannot compare {ta} and {tb}"))
        } else {
            SomaError::runtime(format!("Cannot compare type {ta} with <"))
        }
    }
    pub fn concat_types(a: Value, b: Value) -> SomaError {
        SomaError::runtime(format!(
            "Type error in concat: expected string, got {} and {}",
            a.class_name(),
            b.class_name()
        ))
    }
    pub fn to_string_type(v: Value) -> SomaError {
        SomaError::runtime(format!(
            "Type error in to_string: expected int, got {}",
            v.class_name()
        ))
    }
    pub fn to_int_type(v: Value) -> SomaError {
        SomaError::runtime(format!(
            "Type error in to_int: expected string, got {}",
            v.class_name()
        ))
    }
    pub fn block_outside() -> SomaError {
        SomaError::runtime(">block called at top-level (no current block)")
    }
    pub fn read_line_eof() -> SomaError {
        SomaError::runtime("read_line: EOF encountered")
    }
    pub fn assert_failed(rendered: &str) -> SomaError {
        SomaError::runtime(format!("ASSERT FAILED: {rendered}"))
    }
    pub fn assert_failed_empty() -> SomaError {
        SomaError::runtime("ASSERT FAILED: (no message provided)")
    }
    pub fn use_type(v: Value) -> SomaError {
        SomaError::runtime(format!(
            "use: expected string extension name, got {}",
            v.class_name()
        ))
    }
    pub fn extension_not_found(name: &str) -> SomaError {
        SomaError::runtime(format!(
            "Extension '{name}' not found: No module named 'soma.extensions.{name}'"
        ))
    }
    pub fn recursion(limit: usize) -> SomaError {
        SomaError::runtime(format!(
            "recursion too deep (limit {limit} nested block executions)"
        ))
    }
    pub fn memory_limit(limit: usize) -> SomaError {
        SomaError::limit(format!("Memory limit exceeded (limit {limit} bytes)"))
    }
    pub fn step_limit(limit: u64) -> SomaError {
        SomaError::limit(format!("Step limit exceeded (limit {limit} block executions)"))
    }
    pub fn time_limit() -> SomaError {
        SomaError::limit("Time limit exceeded")
    }
    pub fn interrupted() -> SomaError {
        SomaError::limit("Interrupted")
    }
}
