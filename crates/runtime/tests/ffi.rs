//! The C-ABI surface as the bridge and JIT use it: statuses, error readback, value helpers,
//! pins, shadow-stack roots, the Store-cell cache guard, host builtins and foreign handles.

use soma_runtime::encode::assemble_bytes;
use soma_runtime::ffi::*;
use soma_runtime::heap::CELL_VALUE_OFFSET;
use soma_runtime::{Value, Vm};
use std::sync::atomic::{AtomicU64, Ordering};

struct Handle(*mut Vm);

impl Handle {
    fn new() -> Handle {
        let vm = soma_rt_vm_new();
        assert!(!vm.is_null());
        Handle(vm)
    }
    fn load(&self, src: &str) -> u32 {
        let bytes = assemble_bytes(src).unwrap();
        let mut id = u32::MAX;
        // SAFETY: live VM, valid buffer and out pointer.
        let status = unsafe { soma_rt_load_module(self.0, bytes.as_ptr(), bytes.len(), &mut id) };
        assert_eq!(status, SOMA_OK);
        id
    }
    fn run(&self, src: &str) -> i32 {
        let id = self.load(src);
        // SAFETY: live VM.
        unsafe { soma_rt_run_module(self.0, id) }
    }
    fn error(&self) -> (i32, String, u32, u32) {
        let (mut p, mut n) = (std::ptr::null(), 0usize);
        // SAFETY: live VM; the message pointer is read before the error changes.
        unsafe {
            assert_eq!(soma_rt_error_message(self.0, &mut p, &mut n), SOMA_OK);
            let msg = std::str::from_utf8(std::slice::from_raw_parts(p, n)).unwrap().to_string();
            (soma_rt_error_class(self.0), msg, soma_rt_error_line(self.0), soma_rt_error_col(self.0))
        }
    }
    #[allow(clippy::mut_from_ref)] // the VM lives behind a raw pointer, not inside `self`
    fn vm(&self) -> &mut Vm {
        // SAFETY: the handle owns a live VM; tests use one reference at a time.
        unsafe { &mut *self.0 }
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        // SAFETY: the VM came from soma_rt_vm_new and is not used afterwards.
        unsafe { soma_rt_vm_free(self.0) };
    }
}

#[test]
fn errors_are_read_back_with_class_and_position() {
    let h = Handle::new();
    assert_eq!(h.run("1 2 >+\n  (x) >toInt >print\n (a) 1 >-"), SOMA_ERROR);
    assert_eq!(
        h.error(),
        (3, "Type error in -: expected int, got str and int".to_string(), 3, 8)
    );
    // SAFETY: live VM.
    unsafe {
        soma_rt_error_clear(h.0);
        assert_eq!(soma_rt_error_class(h.0), 0);
        let mut p = std::ptr::null();
        let mut n = 0;
        assert_eq!(soma_rt_error_message(h.0, &mut p, &mut n), SOMA_ERROR);
    }
    // The VM stays usable and kept the work done before the error.
    assert_eq!(h.run("5"), SOMA_OK);
    // SAFETY: live VM.
    assert_eq!(unsafe { soma_rt_al_len(h.0) }, 2);
}

#[test]
fn malformed_bytecode_is_an_error_status() {
    let h = Handle::new();
    let mut id = 0;
    // SAFETY: live VM, valid buffer.
    let status = unsafe { soma_rt_load_module(h.0, b"nope".as_ptr(), 4, &mut id) };
    assert_eq!(status, SOMA_ERROR);
    assert_eq!(h.error().1, "invalid bytecode: BadMagic at byte 0");
}

#[test]
fn error_at_positions_only_unpositioned_errors() {
    let h = Handle::new();
    // SAFETY: live VM, valid out pointers.
    unsafe {
        let mut out = 0;
        assert_eq!(soma_rt_pop(h.0, &mut out), SOMA_ERROR);
        soma_rt_error_at(h.0, 4, 2);
        soma_rt_error_at(h.0, 9, 9);
        assert_eq!((soma_rt_error_line(h.0), soma_rt_error_col(h.0)), (4, 2));
        let msg = "bad token";
        soma_rt_set_error(h.0, 1, msg.as_ptr(), msg.len(), 3, 5);
        assert_eq!(h.error(), (1, "bad token".to_string(), 3, 5));
    }
}

#[cfg(debug_assertions)]
#[test]
fn panics_become_internal_errors() {
    let h = Handle::new();
    // Leaving a block at top level trips a debug assertion inside the helper.
    // SAFETY: live VM.
    let status = unsafe { soma_rt_leave_block(h.0) };
    assert_eq!(status, SOMA_INTERNAL);
    let (class, msg, _, _) = h.error();
    assert_eq!(class, 3);
    assert!(msg.starts_with("internal error: leave_block without enter_block"), "{msg}");
    assert_eq!(h.run("1"), SOMA_OK, "still usable");
}

#[test]
fn value_form_arithmetic_slow_paths() {
    let h = Handle::new();
    let int = |i: i64| Value::small_int(i).unwrap().to_bits();
    let mut out = 0u64;
    // SAFETY: live VM; operands are immediates or freshly returned values.
    unsafe {
        assert_eq!(soma_rt_int_arith(h.0, 2, int(1 << 40), int(1 << 40), &mut out), SOMA_OK);
        let big = Value::from_bits(out);
        assert_eq!(soma_runtime::int::to_decimal(big).unwrap(), (1i128 << 80).to_string());
        assert_eq!(soma_rt_int_arith(h.0, 3, int(-7), int(2), &mut out), SOMA_OK);
        assert_eq!(Value::from_bits(out).as_small_int(), Some(-4));
        assert_eq!(soma_rt_int_arith(h.0, 4, int(7), int(0), &mut out), SOMA_ERROR);
        assert_eq!(h.error().1, "Modulo by zero");
        assert_eq!(soma_rt_int_arith(h.0, 0, Value::NIL.to_bits(), int(1), &mut out), SOMA_ERROR);
        assert_eq!(h.error().1, "Type error in +: expected int, got NilSingleton and int");
        assert_eq!(soma_rt_lt_values(h.0, int(1), int(2), &mut out), SOMA_OK);
        assert_eq!(Value::from_bits(out), Value::TRUE);
    }
}

#[test]
fn strings_pins_and_shadow_slots_survive_collections() {
    let h = Handle::new();
    // SAFETY: live VM; pointers are valid for the documented accesses.
    unsafe {
        let mut s = 0u64;
        assert_eq!(soma_rt_new_str(h.0, "pinned".as_ptr(), 6, &mut s), SOMA_OK);
        let pin = soma_rt_pin(h.0, s);
        assert_ne!(pin, 0);
        let mut spilled = 0u64;
        assert_eq!(soma_rt_new_str(h.0, "spilled".as_ptr(), 7, &mut spilled), SOMA_OK);
        let mut base: *mut u64 = std::ptr::null_mut();
        assert_eq!(soma_rt_shadow_reserve(h.0, 4, &mut base), SOMA_OK);
        *base.add(3) = spilled;
        let mut garbage = 0u64;
        soma_rt_new_str(h.0, "garbage".as_ptr(), 7, &mut garbage);
        let before = h.vm().heap_stats().objects;
        h.vm().collect();
        assert_eq!(h.vm().heap_stats().objects, before - 1, "only the unrooted Str died");
        let (mut p, mut n) = (std::ptr::null(), 0);
        assert_eq!(soma_rt_str_data(h.0, *base.add(3), &mut p, &mut n), SOMA_OK);
        assert_eq!(std::slice::from_raw_parts(p, n), b"spilled");
        let mut back = 0;
        assert_eq!(soma_rt_pinned(h.0, pin, &mut back), SOMA_OK);
        assert_eq!(back, s);
        assert_eq!(soma_rt_shadow_release(h.0, 4), SOMA_OK);
        assert_eq!(soma_rt_unpin(h.0, pin), SOMA_OK);
        assert_eq!(soma_rt_unpin(h.0, pin), SOMA_ERROR);
        h.vm().collect();
        assert_eq!(h.vm().heap_stats().objects, before - 3);
        assert_eq!(soma_rt_str_data(h.0, Value::NIL.to_bits(), &mut p, &mut n), SOMA_ERROR);
    }
}

#[test]
fn cached_store_cells_behind_the_epoch_guard() {
    let h = Handle::new();
    let id = h.load("a.b");
    let path: *const soma_runtime::decode::Path = &h.vm().module(id).unwrap().module.codes[0].paths[0];
    assert_eq!(h.run("1 !a.b"), SOMA_OK);
    // SAFETY: live VM; `path` belongs to a loaded module; the cell is read while the epoch
    // is unchanged, which is the cache contract.
    unsafe {
        let epoch = soma_rt_epoch_ptr(h.0);
        let e0 = *epoch;
        let mut cell = std::ptr::null_mut();
        assert_eq!(soma_rt_store_lookup(h.0, path, &mut cell), SOMA_OK);
        assert!(!cell.is_null());
        let read = |cell: *mut soma_runtime::heap::CellObj| {
            *(cell.cast::<u8>().add(CELL_VALUE_OFFSET).cast::<u64>())
        };
        assert_eq!(Value::from_bits(read(cell)).as_small_int(), Some(1));
        assert_eq!(soma_rt_cell_write(h.0, cell, Value::small_int(5).unwrap().to_bits()), SOMA_OK);
        assert_eq!(h.run("a.b 7 !a.b  8 !c"), SOMA_OK);
        assert_eq!(*epoch, e0, "plain writes keep the cache valid");
        assert_eq!(Value::from_bits(read(cell)).as_small_int(), Some(7));
        assert_eq!(h.run("Void !a."), SOMA_OK);
        assert_ne!(*epoch, e0, "a delete invalidates cached cells");
        assert_eq!(soma_rt_store_lookup(h.0, path, &mut cell), SOMA_OK);
        assert!(cell.is_null());
    }
    assert_eq!(h.vm().al()[0].as_small_int(), Some(5));
}

unsafe extern "C" fn host_twice(_user: *mut std::ffi::c_void, vm: *mut Vm, id: u32) -> i32 {
    assert_eq!(id, 7);
    let mut v = 0u64;
    // SAFETY: the runtime calls us with its live VM.
    unsafe {
        if soma_rt_pop(vm, &mut v) != SOMA_OK {
            return SOMA_ERROR;
        }
        let two = Value::small_int(2).unwrap().to_bits();
        let mut out = 0;
        if soma_rt_int_arith(vm, 2, v, two, &mut out) != SOMA_OK {
            return SOMA_ERROR;
        }
        soma_rt_push(vm, out)
    }
}

static RELEASED: AtomicU64 = AtomicU64::new(0);
unsafe extern "C" fn release(handle: u64) {
    RELEASED.fetch_add(handle, Ordering::SeqCst);
}

#[test]
fn host_builtins_and_foreign_handles() {
    let h = Handle::new();
    h.vm().define_host_builtin("use.test.twice", 7);
    h.vm().set_host_call(Some(host_twice), std::ptr::null_mut());
    assert_eq!(h.run("21 >use.test.twice"), SOMA_OK);
    assert_eq!(h.vm().al()[0].as_small_int(), Some(42));
    assert_eq!(h.run("!x >use.test.twice"), SOMA_ERROR);
    assert_eq!(h.error().1, "AL underflow: pop requires 1 value");
    assert_eq!((h.error().2, h.error().3), (1, 4));

    // SAFETY: live VM; the release callback does not re-enter the runtime.
    unsafe {
        assert_eq!(soma_rt_set_foreign_release(h.0, Some(release)), SOMA_OK);
        let mut f = 0;
        assert_eq!(soma_rt_new_foreign(h.0, 1000, "list".as_ptr(), 4, &mut f), SOMA_OK);
        assert_eq!(Value::from_bits(f).type_name(), "list");
        soma_rt_push(h.0, f);
        let mut g = 0;
        soma_rt_new_foreign(h.0, 5, "float".as_ptr(), 5, &mut g);
    }
    h.vm().collect();
    assert_eq!(RELEASED.load(Ordering::SeqCst), 5, "the unrooted handle is released");
    assert_eq!(h.run(">debug.type"), SOMA_OK);
    assert_eq!(h.vm().al().last().unwrap().as_str(), Some("List"), "debug.type of a Python list");
    h.vm().collect();
    assert_eq!(RELEASED.load(Ordering::SeqCst), 1005, "popped by debug.type, then released");
}

static RECURSE_PATH: std::sync::atomic::AtomicPtr<soma_runtime::decode::Path> =
    std::sync::atomic::AtomicPtr::new(std::ptr::null_mut());
static NATIVE_CALLS: AtomicU64 = AtomicU64::new(0);

/// A "compiled" body for `{ >r }`: executes `r` again through the helper, i.e. native
/// recursion as JIT code would do it.
unsafe extern "C" fn native_recurse(vm: *mut Vm, _chained: u32) -> i32 {
    NATIVE_CALLS.fetch_add(1, Ordering::SeqCst);
    let path = RECURSE_PATH.load(Ordering::SeqCst);
    // SAFETY: the path belongs to a module loaded in this VM.
    unsafe { soma_rt_exec_store(vm, path) }
}

#[test]
fn native_entries_are_called_and_native_recursion_is_guarded() {
    // A thread with a known stack (16 MiB: room for 10,000 helper-recursion levels), so the
    // depth limit fires first; with the limit lifted the native stack guard must fire
    // before the stack overflows.
    std::thread::Builder::new()
        .stack_size(16 << 20)
        .spawn(|| {
            let h = Handle::new();
            let id = h.load("{ >r } !r >r");
            let m = h.vm().module(id).unwrap().clone();
            RECURSE_PATH.store(&m.module.codes[0].paths[1] as *const _ as *mut _, Ordering::SeqCst);
            let block = h.vm().block_obj(m.blocks[1]).unwrap();
            block.native_entry.set(Some(native_recurse));
            // With the default depth limit the depth check stops it.
            // SAFETY: live VM.
            assert_eq!(unsafe { soma_rt_run_module(h.0, id) }, SOMA_ERROR);
            assert_eq!(h.error().1, "recursion too deep (limit 10000 nested block executions)");
            assert_eq!(NATIVE_CALLS.load(Ordering::SeqCst), 10_000);
            assert_eq!(h.vm().depth(), 0, "every frame left on the way out");
            // With no practical depth limit, the native stack guard stops it instead.
            h.vm().set_max_depth(usize::MAX);
            // SAFETY: live VM.
            unsafe { soma_rt_error_clear(h.0) };
            let run = h.load(">r");
            // SAFETY: live VM.
            assert_eq!(unsafe { soma_rt_run_module(h.0, run) }, SOMA_ERROR);
            assert!(h.error().1.starts_with("recursion too deep"), "{}", h.error().1);
            assert_eq!(h.vm().depth(), 0);
            assert_eq!(h.run("1 2 >+"), SOMA_OK, "usable afterwards");
        })
        .unwrap()
        .join()
        .unwrap();
}

static LOAD_MODULE: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

/// A `load`-like host builtin: runs a whole program in the middle of a block.
unsafe extern "C" fn host_load(_user: *mut std::ffi::c_void, vm: *mut Vm, _id: u32) -> i32 {
    // SAFETY: the runtime calls us with its live VM.
    unsafe { soma_rt_run_module(vm, LOAD_MODULE.load(Ordering::SeqCst)) }
}

#[test]
fn a_program_run_inside_a_block_uses_the_top_level_register() {
    let h = Handle::new();
    h.vm().define_host_builtin("load", 1);
    h.vm().set_host_call(Some(host_load), std::ptr::null_mut());
    let loaded = h.load("_.x 1 >+ !_.x  >block");
    LOAD_MODULE.store(loaded, Ordering::SeqCst);
    assert_eq!(h.run("10 !_.x  { 5 !_.y >load _.y } !f >f  _.x"), SOMA_OK);
    let al: Vec<String> = h.vm().al().iter().map(|&v| soma_runtime::render::al_form(v)).collect();
    // The loaded program saw the top-level `_.x`, and `>block` the caller's block `f`.
    assert_eq!(al, ["Block", "5", "11"]);
    assert_eq!(h.vm().depth(), 0);
    let f = h.vm().read_store_path(&["f"]).unwrap();
    assert_eq!(h.vm().al()[0], f);
}
