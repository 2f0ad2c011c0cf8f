//! The core builtins: their Store names and their semantics on the VM.
//!
//! Conventions (docs/semantics.md): a builtin first checks that the AL holds enough values
//! (its own `AL underflow: ...` message, `msg::builtin_underflow`; nothing popped), then pops its operands, then
//! checks their types (so after a type error the operands are gone). Operand order: for
//! `a b >-` the result is `a - b`. Every builtin that allocates calls `safepoint` first,
//! while its operands are still on the AL.

use crate::error::{msg, RtResult};
use crate::int::{self, ArithError, ArithOp};
use crate::value::Value;
use crate::vm::Vm;

pub use crate::builtin_id::{BuiltinId, CORE_BUILTINS};

impl BuiltinId {
    /// The name used in messages.
    pub fn name(self) -> &'static str {
        CORE_BUILTINS
            .iter()
            .find(|(_, id)| *id == self)
            .map_or("<host builtin>", |(n, _)| n)
    }
}

impl Vm {
    /// Fail with the underflow message unless the AL holds `n` values.
    #[inline]
    pub(crate) fn need(&self, name: &str, n: usize) -> RtResult<()> {
        if self.al.len() < n {
            Err(msg::builtin_underflow(name, n))
        } else {
            Ok(())
        }
    }

    /// The value `depth` below the AL top (0: the top); the length was checked by `need`.
    #[inline]
    fn peek(&self, depth: usize) -> Value {
        self.al[self.al.len() - 1 - depth]
    }

    #[inline]
    fn pop_unchecked(&mut self) -> Value {
        self.al.pop().expect("length checked by `need`")
    }

    /// Run a builtin other than `chain` (whose looping belongs to the executor: see
    /// `chain_start` / `chain_next`) and host builtins (see `ops.rs`).
    pub fn call_builtin(&mut self, id: BuiltinId) -> RtResult<()> {
        match id {
            BuiltinId::Block => {
                let block = self.frames.last().and_then(crate::vm::Frame::block);
                self.al.push(block.ok_or_else(msg::block_outside)?);
            }
            BuiltinId::Choose => {
                self.need("choose", 3)?;
                let if_false = self.pop_unchecked();
                let if_true = self.pop_unchecked();
                let cond = self.pop_unchecked();
                self.al.push(if cond.is_truthy() { if_true } else { if_false });
            }
            BuiltinId::Chain => self.chain_recursive()?,
            BuiltinId::Lt => {
                self.need("<", 2)?;
                let b = self.pop_unchecked();
                let a = self.pop_unchecked();
                let r = lt(a, b)?;
                self.al.push(r);
            }
            BuiltinId::Add => self.arith_builtin(ArithOp::Add)?,
            BuiltinId::Sub => self.arith_builtin(ArithOp::Sub)?,
            BuiltinId::Mul => self.arith_builtin(ArithOp::Mul)?,
            BuiltinId::Div => self.arith_builtin(ArithOp::FloorDiv)?,
            BuiltinId::Mod => self.arith_builtin(ArithOp::Mod)?,
            BuiltinId::Print => {
                self.need("print", 1)?;
                let v = self.pop_unchecked();
                let line = self.print_form(v);
                self.io.write_line(&line);
                if let Some(e) = self.io.take_error() {
                    return Err(e);
                }
            }
            BuiltinId::ReadLine => {
                self.safepoint()?;
                let line = self.io.read_line();
                if let Some(e) = self.io.take_error() {
                    return Err(e);
                }
                let line = line.ok_or_else(msg::read_line_eof)?;
                self.heap.check_alloc(line.len())?;
                let s = self.heap.alloc_str(&line);
                self.al.push(s);
            }
            BuiltinId::Concat => {
                self.need("concat", 2)?;
                // The result's size is known before anything is popped: check it against
                // the memory limit while the operands are still rooted (then pop, as every
                // builtin does before it fails on its operands).
                let reserved = match (self.peek(1).as_str(), self.peek(0).as_str()) {
                    (Some(x), Some(y)) => self.reserve(
                        std::mem::size_of::<crate::heap::StrObj>() + x.len().saturating_add(y.len()),
                    ),
                    _ => self.safepoint(),
                };
                if let Err(e) = reserved {
                    self.al.truncate(self.al.len() - 2);
                    return Err(e);
                }
                let b = self.pop_unchecked();
                let a = self.pop_unchecked();
                let (Some(x), Some(y)) = (a.as_str(), b.as_str()) else {
                    return Err(msg::concat_types(a, b));
                };
                let s = self.heap.alloc_str_concat(x, y);
                self.al.push(s);
            }
            BuiltinId::ToString => {
                self.need("toString", 1)?;
                // Decimal digits of a BigInt: fewer than bits / 3 + 2 (log10(2) < 1/3).
                let digits = self.peek(0).as_bigint().map_or(0, |b| (b.bits() as usize) / 3 + 2);
                if let Err(e) = self.reserve(std::mem::size_of::<crate::heap::StrObj>() + digits) {
                    self.al.pop();
                    return Err(e);
                }
                let v = self.pop_unchecked();
                let text = int::to_decimal(v).ok_or_else(|| msg::to_string_type(v))?;
                let s = self.heap.alloc_str(&text);
                self.al.push(s);
            }
            BuiltinId::ToInt => {
                self.need("toInt", 1)?;
                self.safepoint()?;
                let v = self.pop_unchecked();
                let s = v.as_str().ok_or_else(|| msg::to_int_type(v))?;
                let r = match crate::render::python_int(s) {
                    Some(b) => int::from_bigint(&mut self.heap, b),
                    None => Value::NIL,
                };
                self.al.push(r);
            }
            BuiltinId::IsVoid => {
                self.need("isVoid", 1)?;
                let v = self.pop_unchecked();
                self.al.push(Value::bool(v.is_void()));
            }
            BuiltinId::IsNil => {
                self.need("isNil", 1)?;
                let v = self.pop_unchecked();
                self.al.push(Value::bool(v.is_nil()));
            }
            BuiltinId::DebugType => {
                self.need("debug.type", 1)?;
                self.safepoint()?;
                let v = self.pop_unchecked();
                // Foreign Python dicts and lists report as the reference does.
                let name = match v.type_name() {
                    "dict" if v.as_foreign_obj().is_some() => "Dict",
                    "list" if v.as_foreign_obj().is_some() => "List",
                    other => other,
                };
                let s = self.heap.alloc_str(name);
                self.al.push(s);
            }
            BuiltinId::DebugError => {
                let Some(v) = self.al.pop() else {
                    return Err(msg::assert_failed_empty());
                };
                return Err(msg::assert_failed(&self.print_form(v)));
            }
            BuiltinId::DebugId => {
                self.need("debug.id", 1)?;
                self.safepoint()?;
                let v = self.pop_unchecked();
                // Identity, implementation-specific like the reference's `id()`: the object
                // (for a CellRef, the cell) address, or the bits of an immediate.
                let id = if v.is_heap() {
                    (v.to_bits() & crate::value::PAYLOAD_MASK) as i64
                } else {
                    (v.to_bits() >> 1) as i64
                };
                let r = int::from_i64(&mut self.heap, id);
                self.al.push(r);
            }
            BuiltinId::DebugAlDump => self.debug_al_dump(),
            BuiltinId::DebugChain => self.debug_chain()?,
            BuiltinId::DebugChoose => self.debug_choose()?,
            BuiltinId::DebugGraphDump => self.debug_graph_dump()?,
            BuiltinId::DebugGraphDraw => self.debug_graph_draw()?,
            BuiltinId::Use => {
                self.need("use", 1)?;
                let v = self.pop_unchecked();
                let name = v.as_str().ok_or_else(|| msg::use_type(v))?;
                return Err(msg::extension_not_found(name));
            }
            BuiltinId::Host(id) => self.call_host(id)?,
        }
        Ok(())
    }

    fn arith_builtin(&mut self, op: ArithOp) -> RtResult<()> {
        self.need(op.name(), 2)?;
        // Small operands (the common case) need only the plain safepoint.
        let bound = int::result_bytes_bound(op, self.peek(1), self.peek(0));
        let room = if bound == 0 { self.safepoint() } else { self.reserve(bound) };
        if let Err(e) = room {
            self.al.truncate(self.al.len() - 2);
            return Err(e);
        }
        let b = self.pop_unchecked();
        let a = self.pop_unchecked();
        let r = self.arith(op, a, b)?;
        self.al.push(r);
        Ok(())
    }

    /// `a op b` on values (the slow path JIT code calls when its inline small-int path
    /// fails). Allocates but never collects.
    pub fn arith(&mut self, op: ArithOp, a: Value, b: Value) -> RtResult<Value> {
        int::arith(&mut self.heap, op, a, b).map_err(|e| match e {
            ArithError::NotInts => msg::arith_types(op.name(), a, b),
            ArithError::DivisionByZero => msg::division_by_zero(),
            ArithError::ModuloByZero => msg::modulo_by_zero(),
            ArithError::MemoryLimit => msg::memory_limit(self.heap.max_bytes()),
        })
    }

    /// First step of `chain`: pop the value; an executable is returned to be run, anything
    /// else is pushed back and the chain ends (`None`).
    pub fn chain_start(&mut self) -> RtResult<Option<Value>> {
        self.need("chain", 1)?;
        let v = self.pop_unchecked();
        if v.is_executable() {
            Ok(Some(v))
        } else {
            self.al.push(v);
            Ok(None)
        }
    }

    /// After each chained execution: if the AL top is executable, pop it and go on.
    pub fn chain_next(&mut self) -> Option<Value> {
        match self.al.last() {
            Some(&v) if v.is_executable() => {
                self.al.pop();
                Some(v)
            }
            _ => None,
        }
    }

    /// `chain` run by native recursion (used when a helper, not the executor, runs it).
    fn chain_recursive(&mut self) -> RtResult<()> {
        let mut next = self.chain_start()?;
        while let Some(v) = next {
            self.exec_value(v)?;
            next = self.chain_next();
        }
        Ok(())
    }

    fn call_host(&mut self, id: u32) -> RtResult<()> {
        let Some((f, user)) = self.host_call else {
            return Err(crate::error::SomaError::runtime(format!(
                "host builtin {id} is not available (no host attached)"
            )));
        };
        // SAFETY: the host registered `f` with this contract: it runs builtin `id` on `vm`
        // and reports errors through `soma_rt_set_error`. `self` is a live, boxed Vm.
        let status = unsafe { f(user, self as *mut Vm, id) };
        if status == crate::abi::SOMA_OK {
            Ok(())
        } else {
            Err(self
                .error
                .take()
                .unwrap_or_else(|| crate::error::SomaError::runtime("host builtin failed")))
        }
    }
}

/// `a < b` for Int/Int and Str/Str.
pub fn lt(a: Value, b: Value) -> RtResult<Value> {
    if let Some(ord) = int::compare(a, b) {
        return Ok(Value::bool(ord.is_lt()));
    }
    if let (Some(x), Some(y)) = (a.as_str(), b.as_str()) {
        // Byte order of UTF-8 is code point order, which is Python's str order.
        return Ok(Value::bool(x < y));
    }
    Err(msg::compare_types(a, b))
}
