//! `soma._native`: the only Rust that knows about Python.
//!
//! One class, `Machine`, owns a `soma_runtime::Vm` (AL, Store, Registers, cells, heap) and is
//! driven by `soma.native.NativeVM` (python/soma/native.py). The design rule of
//! /work/shared/ARCHITECTURE.md holds: Python hands over a whole serialized module per
//! crossing (`run`), and the runtime (or the JIT, once tiered up) executes it to the end. The
//! only ways back into Python during a run are
//! * a host builtin (a Python-written builtin such as `use.python.call`, and `use` itself,
//!   which loads Python extensions): `host_call` below;
//! * `print` / `readLine`: `BridgeIo`, which calls the VM's `write_line` / `read_line`;
//! * rendering a foreign object for `print`: `foreign_repr`;
//! * releasing a foreign object the collector freed: `foreign_release`.
//!
//! Values crossing the boundary (`object_of` / `value_of`): Int (small and big, exact), Str,
//! True/False/Nil/Void as the `soma` singletons, Python floats as doubles; Blocks and builtins
//! map to one Python object each (a cache keyed by the value's bits: both are VM roots for the
//! VM's whole life, so bits are stable identities); a CellRef becomes a `NativeCellRef` that
//! pins its cell until the Python object dies; any other Python object becomes a Foreign
//! value holding a strong reference, dropped by the collector's release callback.
//!
//! Errors: a run returns `None` or an error tuple `(class, message, line, col, exc)`, where
//! `exc` is the Python exception a host builtin raised (kept as is, so its class, message and
//! source survive), and native.py raises the matching `soma` exception.
//!
//! Re-entrancy: every method takes `&self` (a host builtin may run SOMA code on the same
//! machine while an outer run is in progress); the VM is reached through a raw pointer, as
//! the runtime itself does for host callbacks. The class is `unsendable`: one thread only.

use pyo3::exceptions::{PyIndexError, PyKeyError, PyRuntimeError, PyValueError};
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::{PyTraverseError, PyVisit};
use pyo3::types::{PyBytes, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple, PyType};
use soma_runtime::error::SomaError;
use soma_runtime::value::Kind;
use soma_runtime::vm::HostIo;
use soma_runtime::{Value, Vm};
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::panic::{catch_unwind, AssertUnwindSafe};

const SOMA_OK: i32 = soma_runtime::ffi::SOMA_OK;
const SOMA_ERROR: i32 = soma_runtime::ffi::SOMA_ERROR;

/// What callbacks reach through their `user` pointer. Boxed inside `Machine`: stable address.
struct Ctx {
    /// The Python `NativeVM` while a run is in progress (None otherwise; not kept between
    /// runs so that no reference cycle through Rust is created).
    owner: RefCell<Option<Py<PyAny>>>,
    /// Host builtin id -> the Python callable `fn(vm)`.
    host_fns: RefCell<Vec<Py<PyAny>>>,
    /// The exception a callback raised, handed back with the run's error.
    pending: RefCell<Option<PyErr>>,
    t: Py<PyAny>,
    f: Py<PyAny>,
    nil: Py<PyAny>,
    void: Py<PyAny>,
    make_block: Py<PyAny>,
    make_cellref: Py<PyAny>,
    make_builtin: Py<PyAny>,
    block_type: Py<PyType>,
    cellref_type: Py<PyType>,
    builtin_type: Py<PyType>,
    /// When the poll hook last let other Python threads take the GIL.
    last_yield: Cell<std::time::Instant>,
    /// Bits of a Block or builtin value -> its one Python object.
    objects: RefCell<HashMap<u64, Py<PyAny>>>,
    /// Address of a Python `soma.Builtin` -> its native builtin value (objects are kept
    /// alive by `objects`, so addresses are not reused).
    builtin_bits: RefCell<HashMap<usize, u64>>,
}

impl Ctx {
    fn owner(&self, py: Python<'_>) -> Option<Py<PyAny>> {
        self.owner.borrow().as_ref().map(|o| o.clone_ref(py))
    }

    fn stash(&self, e: PyErr) {
        *self.pending.borrow_mut() = Some(e);
    }
}

/// `print` and `readLine` through the Python VM's `write_line` / `read_line` (which honour
/// the output/input hooks and look up `sys.stdout` at call time).
struct BridgeIo {
    ctx: *const Ctx,
    /// The last call raised (the exception is stashed on the Ctx): `print` / `readLine` fail.
    failed: bool,
}

impl HostIo for BridgeIo {
    fn write_line(&mut self, line: &str) {
        // SAFETY: `ctx` points into the Box owned by the Machine that owns this VM; the VM
        // (and so this IO object) is dropped before the Ctx.
        let ctx = unsafe { &*self.ctx };
        let _ = catch_unwind(AssertUnwindSafe(|| {
            Python::attach(|py| {
                let Some(owner) = ctx.owner(py) else { return };
                if let Err(e) = owner.call_method1(py, pyo3::intern!(py, "write_line"), (line,)) {
                    ctx.stash(e);
                    self.failed = true;
                }
            })
        }));
    }

    fn read_line(&mut self) -> Option<String> {
        // SAFETY: as in `write_line`.
        let ctx = unsafe { &*self.ctx };
        catch_unwind(AssertUnwindSafe(|| {
            Python::attach(|py| {
                let owner = ctx.owner(py)?;
                match owner.call_method0(py, pyo3::intern!(py, "read_line")) {
                    Ok(v) if v.is_none(py) => None,
                    Ok(v) => match v.bind(py).str() {
                        Ok(s) => Some(s.to_string_lossy().into_owned()),
                        Err(e) => {
                            ctx.stash(e);
                            self.failed = true;
                            None
                        }
                    },
                    Err(e) => {
                        ctx.stash(e);
                        self.failed = true;
                        None
                    }
                }
            })
        }))
        .unwrap_or(None)
    }

    fn take_error(&mut self) -> Option<SomaError> {
        std::mem::take(&mut self.failed).then(|| SomaError::runtime("host I/O failed"))
    }
}

/// Host builtin callback: call the Python function registered under `id` with the VM.
unsafe extern "C" fn host_call(user: *mut std::ffi::c_void, vm: *mut Vm, id: u32) -> i32 {
    // SAFETY: `user` is the Machine's boxed Ctx (registered in `Machine::new`), alive as long
    // as the VM that calls us.
    let ctx = unsafe { &*(user as *const Ctx) };
    let status = catch_unwind(AssertUnwindSafe(|| {
        Python::attach(|py| {
            let f = ctx.host_fns.borrow().get(id as usize).map(|f| f.clone_ref(py));
            let (Some(f), Some(owner)) = (f, ctx.owner(py)) else {
                return Err("host builtin called outside a run".to_string());
            };
            // `NativeVM._host` keeps `vm.al` in step around the call.
            match owner.call_method1(py, pyo3::intern!(py, "_host"), (f,)) {
                Ok(_) => Ok(()),
                Err(e) => {
                    ctx.stash(e);
                    Err("host builtin failed".to_string())
                }
            }
        })
    }));
    let message = match status {
        Ok(Ok(())) => return SOMA_OK,
        Ok(Err(m)) => m,
        Err(_) => "internal error: panic in a host builtin".to_string(),
    };
    // SAFETY: the runtime passes the live VM that is running the host builtin.
    let vm = unsafe { &mut *vm };
    vm.set_error(SomaError::runtime(message));
    SOMA_ERROR
}

/// How long a run keeps the GIL before the poll hook lets other Python threads run (as
/// Python's own switch interval): a thread that calls `vm.interrupt()` needs the GIL.
const GIL_SLICE: std::time::Duration = std::time::Duration::from_millis(5);

/// How long the hook stays off the GIL when it yields. Releasing and at once re-taking it
/// is not enough: the waiting thread is woken but this one takes the GIL back first, and a
/// waiter only asks the holder to hand it over (Python's drop request) after a switch
/// interval in which nobody took the GIL, which a release every 5.000 ms (compiled loops
/// poll every few microseconds) never leaves: `vm.interrupt()` from a timer thread went
/// unseen for a minute. A short wait lets the woken thread take it (0.1 ms per 5 ms: 2% of a
/// long run's time, spent only while the run has held the GIL that long).
const GIL_YIELD: std::time::Duration = std::time::Duration::from_micros(100);

/// Poll hook (every few thousand block entries, after the runtime checked the run's limits):
/// run Python's signal handlers, so Ctrl-C (KeyboardInterrupt) stops a runaway program (the
/// exception is handed back with the run); and every [`GIL_SLICE`], release the GIL for
/// [`GIL_YIELD`] so other Python threads (e.g. one calling `vm.interrupt()`) can run. Nothing of
/// the VM crosses threads: during the release this thread waits and holds no Python object,
/// and the Machine is `unsendable` (other threads can only set the interrupt flag, an
/// atomic shared through `Interrupter`).
fn poll(_vm: &mut Vm, user: *mut std::ffi::c_void) -> Result<(), SomaError> {
    // SAFETY: `user` is the Machine's boxed Ctx, alive as long as the VM.
    let ctx = unsafe { &*(user as *const Ctx) };
    let failed = catch_unwind(AssertUnwindSafe(|| {
        Python::attach(|py| {
            let now = std::time::Instant::now();
            if now.duration_since(ctx.last_yield.get()) >= GIL_SLICE {
                py.detach(|| std::thread::sleep(GIL_YIELD));
                ctx.last_yield.set(std::time::Instant::now());
            }
            // SAFETY: called with the GIL held (the runtime only runs inside a Python call).
            if unsafe { ffi::PyErr_CheckSignals() } != 0 {
                let e = PyErr::take(py)
                    .unwrap_or_else(|| PyRuntimeError::new_err("signal handler failed"));
                ctx.stash(e);
                true
            } else {
                false
            }
        })
    }))
    .unwrap_or(false);
    if failed {
        Err(SomaError::runtime("interrupted"))
    } else {
        Ok(())
    }
}

/// `print` of a foreign value: Python's `repr`.
unsafe extern "C" fn foreign_repr(
    _user: *mut std::ffi::c_void,
    handle: u64,
    buf: *mut u8,
    cap: usize,
) -> usize {
    let text = catch_unwind(AssertUnwindSafe(|| {
        Python::attach(|py| {
            // SAFETY: a foreign handle is a strong reference to a live Python object that the
            // VM owns until `foreign_release`.
            let obj = unsafe { Bound::from_borrowed_ptr(py, handle as *mut ffi::PyObject) };
            match obj.repr() {
                Ok(r) => r.to_string_lossy().into_owned(),
                Err(_) => "<unrepresentable object>".to_string(),
            }
        })
    }))
    .unwrap_or_else(|_| "<unrepresentable object>".to_string());
    let bytes = text.as_bytes();
    let n = bytes.len().min(cap);
    // SAFETY: the runtime's contract: `buf` is valid for `cap` bytes.
    unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), buf, n) };
    bytes.len()
}

/// The collector freed a foreign object: drop our strong reference.
unsafe extern "C" fn foreign_release(handle: u64) {
    // SAFETY: the handle is a strong reference created by `value_of` (Py_IncRef). The runtime
    // is only entered from Python (the GIL is held while the heap sweeps or the VM drops).
    unsafe { ffi::Py_DecRef(handle as *mut ffi::PyObject) };
}

/// A SOMA error as native.py receives it: (class, message, line, col, exception or None,
/// source name of the module whose instruction failed, or None).
type ErrorInfo = (i32, String, u32, u32, Option<Py<PyAny>>, Option<String>);

/// The native VM state. See the module documentation.
#[pyclass(unsendable, weakref, module = "soma._native")]
struct Machine {
    vm: *mut Vm,
    ctx: Box<Ctx>,
    /// The JIT is installed (run modules through `soma_jit::run_module`).
    jit: bool,
    /// Runs in progress (nested through host builtins).
    running: Cell<u32>,
}

impl Drop for Machine {
    fn drop(&mut self) {
        // SAFETY: `vm` came from `Box::into_raw` in `new` and is dropped exactly once, here,
        // before the Ctx its callbacks point to.
        let vm = unsafe { Box::from_raw(self.vm) };
        let _ = catch_unwind(AssertUnwindSafe(move || drop(vm)));
    }
}

impl Machine {
    #[allow(clippy::mut_from_ref)]
    fn vm(&self) -> &mut Vm {
        // SAFETY: the VM is owned by this Machine and used by one thread (`unsendable`).
        // Re-entrant use (a host builtin calling back into the machine during a run) mirrors
        // the runtime's own host-call contract, which hands the running VM to the callback.
        unsafe { &mut *self.vm }
    }

    /// A native value as a Python object.
    fn object_of(&self, py: Python<'_>, v: Value) -> PyResult<Py<PyAny>> {
        let ctx = &*self.ctx;
        Ok(match v.kind() {
            Kind::Double => PyFloat::new(py, v.as_f64().unwrap_or(f64::NAN)).into_any().unbind(),
            Kind::Void => ctx.void.clone_ref(py),
            Kind::Nil => ctx.nil.clone_ref(py),
            Kind::False => ctx.f.clone_ref(py),
            Kind::True => ctx.t.clone_ref(py),
            Kind::Int => v.as_small_int().unwrap_or(0).into_pyobject(py)?.into_any().unbind(),
            Kind::BigInt => {
                let b = v.as_bigint().expect("BigInt value");
                let bytes = PyBytes::new(py, &b.to_signed_bytes_le());
                let kw = PyDict::new(py);
                kw.set_item("signed", true)?;
                py.get_type::<PyInt>()
                    .call_method("from_bytes", (bytes, "little"), Some(&kw))?
                    .unbind()
            }
            Kind::Str => PyString::new(py, v.as_str().unwrap_or("")).into_any().unbind(),
            Kind::Block => {
                let bits = v.to_bits();
                if let Some(o) = ctx.objects.borrow().get(&bits) {
                    return Ok(o.clone_ref(py));
                }
                // How `print` shows it (the Python side renders it without the runtime).
                let form = self.vm().print_form(v);
                let o = ctx.make_block.call1(py, (bits, form))?;
                ctx.objects.borrow_mut().insert(bits, o.clone_ref(py));
                o
            }
            Kind::Builtin => {
                let bits = v.to_bits();
                if let Some(o) = ctx.objects.borrow().get(&bits) {
                    return Ok(o.clone_ref(py));
                }
                let p = v.as_builtin_obj().expect("builtin value");
                // SAFETY: builtin objects are VM roots for the VM's whole life.
                let name: String = unsafe { (*p.as_ptr()).name.to_string() };
                let o = ctx.make_builtin.call1(py, (name, bits))?;
                ctx.builtin_bits.borrow_mut().insert(o.as_ptr() as usize, bits);
                ctx.objects.borrow_mut().insert(bits, o.clone_ref(py));
                o
            }
            Kind::CellRef => {
                let h = self.vm().pin(v);
                ctx.make_cellref.call1(py, (h, v.to_bits()))?
            }
            Kind::Foreign => {
                let p = v.as_foreign_obj().expect("foreign value");
                // SAFETY: a Foreign value points at a live ForeignObj; its handle is a strong
                // reference to a Python object (see `value_of`).
                let handle = unsafe { (*p.as_ptr()).handle };
                // SAFETY: as above; borrowing creates a new strong reference for the caller.
                unsafe { Bound::from_borrowed_ptr(py, handle as *mut ffi::PyObject) }.unbind()
            }
        })
    }

    /// A Python object as a native value (allocates; never collects).
    fn value_of(&self, obj: &Bound<'_, PyAny>) -> PyResult<Value> {
        let py = obj.py();
        let ctx = &*self.ctx;
        let vm = self.vm();
        if obj.is_exact_instance_of::<PyInt>() {
            if let Ok(i) = obj.extract::<i64>() {
                return Ok(soma_runtime::int::from_i64(vm.heap(), i));
            }
            let bits: usize = obj.call_method0("bit_length")?.extract()?;
            let kw = PyDict::new(py);
            kw.set_item("signed", true)?;
            let bytes = obj.call_method("to_bytes", (bits / 8 + 1, "little"), Some(&kw))?;
            let bytes = bytes.cast::<PyBytes>()?;
            let b = num_bigint::BigInt::from_signed_bytes_le(bytes.as_bytes());
            return Ok(soma_runtime::int::from_bigint(vm.heap(), b));
        }
        if obj.is_exact_instance_of::<PyString>() {
            if let Ok(s) = obj.cast::<PyString>()?.to_str() {
                return Ok(vm.heap().alloc_str(s));
            }
        } else if obj.is(&ctx.t) {
            return Ok(Value::TRUE);
        } else if obj.is(&ctx.f) {
            return Ok(Value::FALSE);
        } else if obj.is(&ctx.nil) {
            return Ok(Value::NIL);
        } else if obj.is(&ctx.void) {
            return Ok(Value::VOID);
        } else if obj.is_exact_instance_of::<PyFloat>() {
            return Ok(Value::from_f64(obj.extract::<f64>()?));
        } else if obj.get_type().is(ctx.block_type.bind(py)) {
            let bits: u64 = obj.getattr(pyo3::intern!(py, "_bits"))?.extract()?;
            // Only a Block of this machine (the cache maps its bits to this very object).
            if ctx.objects.borrow().get(&bits).is_some_and(|o| o.bind(py).is(obj)) {
                // SAFETY: the bits are those of a live Block of this VM (a module root).
                return Ok(unsafe { Value::from_bits(bits) });
            }
        } else if obj.get_type().is(ctx.cellref_type.bind(py)) {
            let h: u64 = obj.getattr(pyo3::intern!(py, "_h"))?.extract()?;
            let m = obj.getattr(pyo3::intern!(py, "_m"))?;
            // Only a CellRef of this machine (its pin handle means nothing elsewhere).
            if m.extract::<PyRef<'_, Machine>>().is_ok_and(|r| std::ptr::eq(&*r, self)) {
                if let Some(v) = vm.pinned(h) {
                    return Ok(v);
                }
            }
        } else if obj.is_instance(ctx.builtin_type.bind(py))? {
            let key = obj.as_ptr() as usize;
            if let Some(&bits) = ctx.builtin_bits.borrow().get(&key) {
                // SAFETY: recorded bits of a builtin of this VM (builtins are roots).
                return Ok(unsafe { Value::from_bits(bits) });
            }
            // A Python-made builtin: give it a host id and a native builtin object.
            let name: String = obj.getattr("name")?.extract()?;
            let f = obj.getattr("fn")?.unbind();
            let id = self.add_host_fn(f);
            let v = vm.alloc_host_builtin(&name, id);
            self.remember_builtin(obj, v);
            return Ok(v);
        }
        // Any other Python object: a Foreign value holding a strong reference.
        let name = obj.get_type().name()?.to_string();
        let ptr = obj.as_ptr();
        // SAFETY: a new strong reference, owned by the heap until `foreign_release`.
        unsafe { ffi::Py_IncRef(ptr) };
        Ok(vm.heap().alloc_foreign(ptr as u64, &name))
    }

    fn add_host_fn(&self, f: Py<PyAny>) -> u32 {
        let mut fns = self.ctx.host_fns.borrow_mut();
        fns.push(f);
        (fns.len() - 1) as u32
    }

    fn remember_builtin(&self, obj: &Bound<'_, PyAny>, v: Value) {
        let bits = v.to_bits();
        self.ctx.builtin_bits.borrow_mut().insert(obj.as_ptr() as usize, bits);
        self.ctx.objects.borrow_mut().insert(bits, obj.clone().unbind());
    }

    /// Run `f` with `owner` as the callbacks' VM; turn its outcome into None / ErrorInfo.
    fn with_owner(
        &self,
        py: Python<'_>,
        owner: &Bound<'_, PyAny>,
        f: impl FnOnce(&mut Vm) -> Result<(), SomaError>,
    ) -> Option<ErrorInfo> {
        let prev = self.ctx.owner.replace(Some(owner.clone().unbind()));
        self.vm().take_error_source();
        self.running.set(self.running.get() + 1);
        let vm = self.vm();
        let result = catch_unwind(AssertUnwindSafe(|| f(vm)));
        self.running.set(self.running.get() - 1);
        if self.running.get() == 0 {
            self.vm().trim_al();
        }
        *self.ctx.owner.borrow_mut() = prev;
        let pending = self.ctx.pending.borrow_mut().take();
        let err = match result {
            Ok(Ok(())) if pending.is_none() => return None,
            // A callback failed where the runtime could not report it (e.g. print's output).
            Ok(Ok(())) => SomaError::runtime("host callback failed"),
            Ok(Err(e)) => e,
            Err(_) => SomaError::runtime("internal error: panic in the native VM"),
        };
        let exc = pending.map(|e| e.into_value(py).into_any());
        let source = self.vm().take_error_source();
        Some((err.class as i32, err.message, err.line, err.col, exc, source))
    }
}

#[pymethods]
impl Machine {
    /// `jit`: install the JIT tier-up hook (crates/jit); `threshold`: its threshold (None:
    /// the JIT's default / `SOMA_JIT_DUMP` etc. from the environment); `background`: where
    /// tier-up generates code (`"1"`, `"0"`, `"lockstep"`; None: `SOMA_JIT_BACKGROUND`);
    /// `opt_threshold`: the optimizing tier's (a count or `"off"`; None: `SOMA_JIT_OPT_THRESHOLD`);
    /// `unroll`: polls before recursion is unrolled (a count or `"off"`; None: `SOMA_JIT_UNROLL`);
    /// `leaf`: leaf copies of direct recursion (None: `SOMA_JIT_LEAF`).
    #[new]
    #[allow(clippy::too_many_arguments)]
    #[pyo3(signature = (jit, threshold, max_depth, singletons, make_block, make_cellref, make_builtin, block_type, cellref_type, builtin_type, background=None, opt_threshold=None, unroll=None, leaf=None))]
    fn new(
        jit: bool,
        threshold: Option<u64>,
        max_depth: usize,
        singletons: (Py<PyAny>, Py<PyAny>, Py<PyAny>, Py<PyAny>),
        make_block: Py<PyAny>,
        make_cellref: Py<PyAny>,
        make_builtin: Py<PyAny>,
        block_type: Py<PyType>,
        cellref_type: Py<PyType>,
        builtin_type: Py<PyType>,
        background: Option<&str>,
        opt_threshold: Option<&str>,
        unroll: Option<&str>,
        leaf: Option<bool>,
    ) -> PyResult<Machine> {
        let (t, f, nil, void) = singletons;
        let ctx = Box::new(Ctx {
            owner: RefCell::new(None),
            host_fns: RefCell::new(Vec::new()),
            pending: RefCell::new(None),
            t,
            f,
            nil,
            void,
            make_block,
            make_cellref,
            make_builtin,
            block_type,
            cellref_type,
            builtin_type,
            last_yield: Cell::new(std::time::Instant::now()),
            objects: RefCell::new(HashMap::new()),
            builtin_bits: RefCell::new(HashMap::new()),
        });
        let mut vm = catch_unwind(Vm::new)
            .map_err(|_| PyRuntimeError::new_err("cannot create the native VM"))?;
        let user = &*ctx as *const Ctx as *mut std::ffi::c_void;
        vm.set_host_call(Some(host_call), user);
        vm.set_foreign_repr(Some(foreign_repr), user);
        vm.set_poll(Some(poll), user);
        vm.heap().set_foreign_release(Some(foreign_release));
        vm.set_io(Box::new(BridgeIo {
            ctx: &*ctx,
            failed: false,
        }));
        vm.set_max_depth(max_depth);
        if jit {
            // The JIT tier-up hook: blocks are compiled after `threshold` interpreted runs.
            let mut config = soma_jit::JitConfig::from_env();
            if threshold.is_some() {
                config.threshold = threshold;
            }
            if let Some(t) = opt_threshold {
                config.opt_threshold = soma_jit::config::parse_threshold(t).ok_or_else(|| {
                    PyValueError::new_err(format!("opt_threshold must be a count or off, got {t:?}"))
                })?;
            }
            if let Some(u) = unroll {
                config.unroll_after = soma_jit::config::parse_unroll(u).ok_or_else(|| {
                    PyValueError::new_err(format!("unroll must be a count or off, got {u:?}"))
                })?;
            }
            if let Some(l) = leaf {
                config.leaf_inline = l;
            }
            if let Some(b) = background {
                config.background = soma_jit::Background::parse(b).ok_or_else(|| {
                    PyValueError::new_err(format!("background must be 1, 0 or lockstep, got {b:?}"))
                })?;
            }
            soma_jit::install_with(&mut vm, config).map_err(PyRuntimeError::new_err)?;
        }
        Ok(Machine {
            vm: Box::into_raw(vm),
            ctx,
            jit,
            running: Cell::new(0),
        })
    }

    /// Decode and run a serialized module (soma.code.encode_module) at top level.
    /// None on success, else the error tuple (see the module documentation).
    fn run(&self, py: Python<'_>, owner: &Bound<'_, PyAny>, data: &[u8]) -> Option<ErrorInfo> {
        let jit = self.jit;
        self.with_owner(py, owner, |vm| {
            let id = vm.load_module_bytes(data)?;
            if jit {
                soma_jit::run_module(vm, id)
            } else {
                soma_runtime::exec::run_module(vm, id)
            }
        })
    }

    /// Show Python's cycle collector the Python objects the machine holds (host builtin
    /// functions, the Block/builtin objects, the factories), so that a builtin closing over
    /// its VM does not keep VM and machine alive forever. (Foreign values on the native heap
    /// are not traversed: a foreign object referring back to its VM still leaks.)
    fn __traverse__(&self, visit: PyVisit<'_>) -> Result<(), PyTraverseError> {
        if let Ok(fns) = self.ctx.host_fns.try_borrow() {
            for f in fns.iter() {
                visit.call(f)?;
            }
        }
        if let Ok(objects) = self.ctx.objects.try_borrow() {
            for o in objects.values() {
                visit.call(o)?;
            }
        }
        visit.call(&self.ctx.make_block)?;
        visit.call(&self.ctx.make_cellref)?;
        visit.call(&self.ctx.make_builtin)?;
        Ok(())
    }

    fn __clear__(&mut self) {
        if let Ok(mut fns) = self.ctx.host_fns.try_borrow_mut() {
            fns.clear();
        }
        if let Ok(mut objects) = self.ctx.objects.try_borrow_mut() {
            objects.clear();
        }
        if let Ok(mut bits) = self.ctx.builtin_bits.try_borrow_mut() {
            bits.clear();
        }
    }

    /// Decode and load a serialized module without running it; returns its id (a module
    /// can then be run many times: `run_loaded`). A malformed module is a ValueError.
    fn load(&self, data: &[u8]) -> PyResult<u32> {
        self.vm()
            .load_module_bytes(data)
            .map_err(|e| PyValueError::new_err(e.message))
    }

    /// Run a loaded module again at top level (same Blocks, counts carry on).
    fn run_loaded(&self, py: Python<'_>, owner: &Bound<'_, PyAny>, id: u32) -> Option<ErrorInfo> {
        let jit = self.jit;
        self.with_owner(py, owner, |vm| {
            if jit {
                soma_jit::run_module(vm, id)
            } else {
                soma_runtime::exec::run_module(vm, id)
            }
        })
    }

    /// Execution counts of every Code of a loaded module (index 0: the program's Block,
    /// which top-level runs do not count).
    fn exec_counts(&self, id: u32) -> PyResult<Vec<u64>> {
        let vm = self.vm();
        let m = vm
            .module(id)
            .cloned()
            .ok_or_else(|| PyIndexError::new_err("no such module"))?;
        Ok(m.blocks
            .iter()
            .map(|&b| vm.block_obj(b).map_or(0, |o| o.exec_count.get()))
            .collect())
    }

    /// Execute a value as `>` does (a Block, a builtin; anything else is an error).
    fn exec_value(
        &self,
        py: Python<'_>,
        owner: &Bound<'_, PyAny>,
        value: &Bound<'_, PyAny>,
    ) -> PyResult<Option<ErrorInfo>> {
        let v = self.value_of(value)?;
        Ok(self.with_owner(py, owner, |vm| vm.exec_value(v)))
    }

    /// Install the Python builtin object `builtin` (a `soma.Builtin`) at a Store path.
    fn define_host(&self, path: &str, builtin: &Bound<'_, PyAny>) -> PyResult<()> {
        let f = builtin.getattr("fn")?.unbind();
        let id = self.add_host_fn(f);
        let v = self.vm().define_host_builtin(path, id);
        self.remember_builtin(builtin, v);
        Ok(())
    }

    /// `!path` from Python (auto-vivifying, CellRef write-through).
    fn store_write(&self, path: &str, value: &Bound<'_, PyAny>) -> PyResult<()> {
        let v = self.value_of(value)?;
        let comps: Vec<&str> = path.split('.').collect();
        self.vm().write_store_path(&comps, v);
        Ok(())
    }

    /// The value at a Store path; KeyError if it was never created.
    fn lookup(&self, py: Python<'_>, path: &str) -> PyResult<Py<PyAny>> {
        let comps: Vec<&str> = path.split('.').collect();
        match self.vm().read_store_path(&comps) {
            Some(v) => self.object_of(py, v),
            None => Err(PyKeyError::new_err(path.to_string())),
        }
    }

    // ----- the AL (indices are already normalised by native.py) -----

    fn al_len(&self) -> usize {
        self.vm().al().len()
    }

    fn al_get(&self, py: Python<'_>, i: usize) -> PyResult<Py<PyAny>> {
        let v = *self
            .vm()
            .al()
            .get(i)
            .ok_or_else(|| PyIndexError::new_err("list index out of range"))?;
        self.object_of(py, v)
    }

    fn al_set(&self, i: usize, value: &Bound<'_, PyAny>) -> PyResult<()> {
        let v = self.value_of(value)?;
        let al = self.vm().al_mut();
        let slot = al
            .get_mut(i)
            .ok_or_else(|| PyIndexError::new_err("list assignment index out of range"))?;
        *slot = v;
        Ok(())
    }

    fn al_del(&self, i: usize) -> PyResult<()> {
        let al = self.vm().al_mut();
        if i >= al.len() {
            return Err(PyIndexError::new_err("list assignment index out of range"));
        }
        al.remove(i);
        Ok(())
    }

    fn al_insert(&self, i: usize, value: &Bound<'_, PyAny>) -> PyResult<()> {
        let v = self.value_of(value)?;
        let al = self.vm().al_mut();
        let i = i.min(al.len());
        al.insert(i, v);
        Ok(())
    }

    fn al_push(&self, value: &Bound<'_, PyAny>) -> PyResult<()> {
        let v = self.value_of(value)?;
        self.vm().push(v);
        Ok(())
    }

    fn al_pop(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let v = self
            .vm()
            .pop()
            .ok_or_else(|| PyIndexError::new_err("pop from empty list"))?;
        // A popped heap value is unrooted until converted; conversion never collects.
        self.object_of(py, v)
    }

    fn al_clear(&self) {
        let vm = self.vm();
        vm.al_mut().clear();
        vm.trim_al();
    }

    /// The whole AL as a Python list (one crossing for iteration, comparison, repr).
    fn al_list<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let vals: Vec<Value> = self.vm().al().to_vec();
        let mut out = Vec::with_capacity(vals.len());
        for v in vals {
            out.push(self.object_of(py, v)?);
        }
        PyList::new(py, out)
    }

    /// Append every item of `values` (a sequence).
    fn al_extend(&self, values: &Bound<'_, PyAny>) -> PyResult<()> {
        let mut vals = Vec::new();
        for item in values.try_iter()? {
            vals.push(self.value_of(&item?)?);
        }
        self.vm().al_mut().extend(vals);
        Ok(())
    }

    // ----- state for Python builtins and the API -----

    fn unpin(&self, handle: u64) {
        self.vm().unpin(handle);
    }

    /// The value a pin handle keeps alive (for NativeCellRef identity).
    fn pinned_bits(&self, handle: u64) -> Option<u64> {
        self.vm().pinned(handle).map(Value::to_bits)
    }

    fn current_block(&self, py: Python<'_>) -> PyResult<Option<Py<PyAny>>> {
        match self.vm().current_block() {
            Some(b) => Ok(Some(self.object_of(py, b)?)),
            None => Ok(None),
        }
    }

    fn depth(&self) -> usize {
        self.vm().depth()
    }

    #[getter]
    fn get_max_depth(&self) -> usize {
        self.vm().max_depth()
    }

    #[setter]
    fn set_max_depth(&self, depth: usize) {
        self.vm().set_max_depth(depth);
    }

    /// Runs in progress on this machine (nested through host builtins).
    fn running(&self) -> u32 {
        self.running.get()
    }

    // ----- resource limits (crates/runtime/src/limits.rs) -----

    /// Start the step budget and time limit (seconds) of a top-level run; None: unlimited.
    #[pyo3(signature = (max_steps, time_limit))]
    fn begin_budget(&self, max_steps: Option<u64>, time_limit: Option<f64>) -> PyResult<()> {
        let time_limit = match time_limit {
            None => None,
            Some(t) if t.is_finite() && t >= 0.0 => Some(std::time::Duration::from_secs_f64(t.min(1e9))),
            Some(t) => return Err(PyValueError::new_err(format!("time limit must be >= 0 seconds, got {t}"))),
        };
        self.vm().begin_budget(max_steps, time_limit);
        Ok(())
    }

    /// Steps (block executions) taken since the last `begin_budget`.
    fn steps_taken(&self) -> u64 {
        self.vm().steps_taken()
    }

    #[getter]
    fn get_max_memory(&self) -> usize {
        self.vm().max_memory()
    }

    #[setter]
    fn set_max_memory(&self, bytes: usize) {
        self.vm().set_max_memory(bytes);
    }

    /// The thread-safe handle that sets this machine's interrupt flag.
    fn interrupter(&self) -> Interrupter {
        Interrupter {
            flag: self.vm().interrupt_handle(),
        }
    }

    /// Force a full collection (tests).
    fn collect(&self) -> PyResult<()> {
        if self.running.get() != 0 {
            return Err(PyValueError::new_err("cannot collect during a run"));
        }
        self.vm().collect();
        Ok(())
    }

    /// After a memory limit error: a full collection, then the allocator's free memory back to
    /// the operating system. Nothing when a run is in progress (the next safepoint collects).
    fn give_back_memory(&self) {
        if self.running.get() == 0 {
            self.vm().collect();
            soma_runtime::limits::give_back_memory();
        }
    }

    /// (objects, bytes) on the native heap (tests, benchmarks).
    fn heap_stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        let s = self.vm().heap_stats();
        PyTuple::new(py, [s.objects as u64, s.bytes as u64])
    }

    fn jit_enabled(&self) -> bool {
        self.jit
    }

    /// The JIT's statistics as a dict (`None` without the JIT): totals, and one
    /// `(name, instrs, compile_us, code_bytes, tier)` tuple per compiled block.
    fn jit_stats<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyDict>>> {
        let Some(s) = soma_jit::stats(self.vm()) else {
            return Ok(None);
        };
        let d = PyDict::new(py);
        d.set_item("blocks_compiled", s.blocks_compiled)?;
        d.set_item("compile_failures", s.compile_failures)?;
        d.set_item("total_compile_ns", s.total_compile_ns)?;
        d.set_item("median_compile_us", s.median_compile_us())?;
        d.set_item("total_code_bytes", s.total_code_bytes)?;
        d.set_item("native_ns", s.native_ns)?;
        d.set_item("deopts", s.deopts)?;
        d.set_item("deopts_by_reason", s.deopts_by_reason())?;
        d.set_item("recompiles", s.recompiles)?;
        d.set_item("inlined", s.inlined)?;
        d.set_item("direct_call_sites", s.direct_call_sites)?;
        d.set_item("folded_compares", s.folded_compares)?;
        d.set_item("child_read_sites", s.child_read_sites)?;
        d.set_item("record_sites", s.record_sites)?;
        d.set_item("record_batches", s.record_batches)?;
        d.set_item("singleton_tests", s.singleton_tests)?;
        d.set_item("sunk_cells", s.sunk_cells)?;
        d.set_item("region_reentries", s.region_reentries)?;
        d.set_item("bounded_checks", s.bounded_checks)?;
        d.set_item("fused_checks", s.fused_checks)?;
        d.set_item("aligned_loops", s.aligned_loops)?;
        d.set_item("nested_choices", s.nested_choices)?;
        d.set_item("realized_chains", s.realized_chains)?;
        d.set_item("known_chains", s.known_chains)?;
        d.set_item("retaken_entries", s.retaken_entries)?;
        d.set_item("exit_reserved_slots", s.exit_reserved_slots)?;
        d.set_item("unrolled", s.unrolled)?;
        d.set_item("leaf_copies", s.leaf_copies)?;
        d.set_item("partial_flushes", s.partial_flushes)?;
        d.set_item("calls_moved", s.calls_moved)?;
        d.set_item("known_choices", s.known_choices)?;
        d.set_item("retranslations", s.retranslations)?;
        d.set_item("background_queued", s.background_queued)?;
        d.set_item("background_installed", s.background_installed)?;
        d.set_item("dropped_stale", s.dropped_stale)?;
        d.set_item("worker_panics", s.worker_panics)?;
        d.set_item("code_cache_hits", s.code_cache_hits)?;
        d.set_item("replayed", s.replayed)?;
        d.set_item("known_hot", s.known_hot)?;
        d.set_item("queue_wait_ns", s.queue_wait_ns)?;
        d.set_item("background_generate_ns", s.background_generate_ns)?;
        d.set_item("background_translate_ns", s.background_translate_ns)?;
        d.set_item("background_install_ns", s.background_install_ns)?;
        d.set_item("postponed", s.postponed)?;
        d.set_item("deferred", s.deferred)?;
        d.set_item("optimized", s.optimized)?;
        d.set_item("speculative", s.speculative)?;
        d.set_item("respecialized", s.respecialized)?;
        d.set_item("revalidated", s.revalidated)?;
        d.set_item("poll_exits", s.poll_exits)?;
        d.set_item("early_polls", s.early_polls)?;
        let blocks: Vec<(String, usize, u64, usize, u8)> = s
            .blocks
            .iter()
            .map(|b| (b.name.clone(), b.instrs, b.compile_us, b.code_size, b.tier))
            .collect();
        d.set_item("blocks", blocks)?;
        Ok(Some(d))
    }

    // ----- crossing benchmarks (benches/crossings.py) -----

    /// Push and pop an Int `n` times inside one crossing (the per-op native cost).
    fn bench_push_pop_native(&self, n: u64) {
        let vm = self.vm();
        for i in 0..n {
            vm.push(Value::small_int(i as i64 & 0xFFFF).unwrap_or(Value::NIL));
            vm.pop();
        }
    }
}

/// Run the runtime's decoder alone on `data`: `None` when it accepts the module, else why it
/// rejects it. For tests that hold the Python and the Rust decoder to the same rules.
#[pyfunction]
fn decode_error(data: &[u8]) -> Option<String> {
    soma_runtime::decode::decode_module(data).err().map(|e| e.to_string())
}

/// Sets a machine's interrupt flag; unlike `Machine`, usable from any thread (the flag is an
/// atomic the runtime reads at its poll points; see `limits.rs`).
#[pyclass(frozen, module = "soma._native")]
struct Interrupter {
    flag: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

#[pymethods]
impl Interrupter {
    /// Stop the run in progress at its next poll point (or the next run, if none is).
    fn interrupt(&self) {
        self.flag.store(true, std::sync::atomic::Ordering::Relaxed);
    }

    /// Withdraw an interrupt no run has consumed yet.
    fn clear(&self) {
        self.flag.store(false, std::sync::atomic::Ordering::Relaxed);
    }
}

/// The extension module.
#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_class::<Machine>()?;
    m.add_function(wrap_pyfunction!(decode_error, m)?)?;
    m.add_class::<Interrupter>()?;
    m.add("DEFAULT_MAX_MEMORY", soma_runtime::limits::default_max_memory())?;
    Ok(())
}
