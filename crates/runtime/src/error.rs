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

    pub fn undefined_store(path: &str) -> SomaError {
        SomaError::runtime(format!("Undefined Store path: '{path}'"))
    }
    pub fn undefined_register(path: &str) -> SomaError {
        SomaError::runtime(format!("Undefined Register path: '{path}'"))
    }
    pub fn store_underflow(path: &str) -> SomaError {
        SomaError::runtime(format!("AL underflow: store to '{path}' needs a value"))
    }
    pub fn not_executable(type_name: &str) -> SomaError {
        SomaError::runtime(format!(
            "Cannot execute {type_name}: only Blocks are executable"
        ))
    }
    pub fn builtin_underflow(name: &str, needs: usize) -> SomaError {
        SomaError::runtime(format!("AL underflow: {name} needs {needs} value(s)"))
    }
    pub fn arith_types(name: &str, a: &str, b: &str) -> SomaError {
        SomaError::runtime(format!(
            "Type error in {name}: expected Int and Int, got {a} and {b}"
        ))
    }
    pub fn division_by_zero() -> SomaError {
        SomaError::runtime("Division by zero")
    }
    pub fn modulo_by_zero() -> SomaError {
        SomaError::runtime("Modulo by zero")
    }
    pub fn compare_types(a: &str, b: &str) -> SomaError {
        SomaError::runtime(format!("Type error in <: cannot compare {a} and {b}"))
    }
    pub fn concat_types(a: &str, b: &str) -> SomaError {
        SomaError::runtime(format!(
            "Type error in concat: expected Str and Str, got {a} and {b}"
        ))
    }
    pub fn to_string_type(t: &str) -> SomaError {
        SomaError::runtime(format!("Type error in toString: expected Int, got {t}"))
    }
    pub fn to_int_type(t: &str) -> SomaError {
        SomaError::runtime(format!("Type error in toInt: expected Str, got {t}"))
    }
    pub fn block_outside() -> SomaError {
        SomaError::runtime(">block used outside any block")
    }
    pub fn read_line_eof() -> SomaError {
        SomaError::runtime("readLine: end of input")
    }
    pub fn assert_failed(rendered: &str) -> SomaError {
        SomaError::runtime(format!("ASSERT FAILED: {rendered}"))
    }
    pub fn assert_failed_empty() -> SomaError {
        SomaError::runtime("ASSERT FAILED: (no message provided)")
    }
    pub fn use_type(t: &str) -> SomaError {
        SomaError::runtime(format!("use: expected Str extension name, got {t}"))
    }
    pub fn extension_not_found(name: &str) -> SomaError {
        SomaError::runtime(format!("Extension '{name}' not found"))
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
