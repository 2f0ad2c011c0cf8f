//! The VM: AL, Store, Register frames, loaded modules, host roots, the heap and the last error.
//!
//! A `Vm` is always used behind a stable address (`Vm::new` returns a `Box`): JIT code and the
//! bridge keep `*mut Vm`, and the epoch and shadow-stack addresses handed out must not move.
//!
//! # Roots (what `collect` marks)
//! the AL; the Store root; every frame's Register root and Block; every loaded module's
//! constants and Block objects; the builtin objects; host pins; the live part of the JIT
//! shadow stack. Nothing else keeps an object alive.

use crate::builtin_id::{BuiltinId, CORE_BUILTINS};
use crate::cell::CellPtr;
use crate::decode::{Const, Module};
use crate::error::{msg, ErrorClass, RtResult, SomaError};
use crate::graph::Graph;
use crate::heap::{BlockObj, Heap, HeapStats};
use crate::store_cache::StoreCacheLine;
use crate::value::Value;
use std::io::{BufRead, Write};
use std::ptr::NonNull;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// Default limit on nested block executions (docs/semantics.md).
pub const DEFAULT_MAX_DEPTH: usize = 10_000;

/// Slots in the JIT shadow stack (root slots JIT frames spill live values into).
pub const SHADOW_STACK_SLOTS: usize = 1 << 16;

/// One block execution: its Register and the Block running. `repr(C)` with offsets in
/// [`JitLayout`]: compiled code pushes and pops frames of the Blocks it calls.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct Frame {
    /// The Register's root cell `_`, created lazily by the first write or reference (null:
    /// none yet).
    pub register: Option<CellPtr>,
    /// The Block running, or Void at top level (see [`Frame::block`]).
    pub block_or_void: Value,
    /// A top-level program run re-entrantly (by a builtin such as `load` in the middle of a
    /// block): it uses the top-level Register, keeps the caller's block and adds no depth.
    pub top_level_alias: bool,
}

impl Frame {
    /// A frame for a Block execution, with a fresh Register.
    pub fn for_block(block: Value) -> Frame {
        Frame {
            register: None,
            block_or_void: block,
            top_level_alias: false,
        }
    }

    /// The Block running (`None` at top level).
    pub fn block(&self) -> Option<Value> {
        (!self.block_or_void.is_void()).then_some(self.block_or_void)
    }
}

/// A decoded module with its constants materialised as values.
pub struct LoadedModule {
    pub module: Module,
    /// `consts[code][i]`: the value CONST pushes (Blocks point into `blocks`).
    pub consts: Vec<Vec<Value>>,
    /// One Block object per Code (index 0, the program, is never pushed).
    pub blocks: Vec<Value>,
    /// `store_cache[code][path]`: the executor's inline cache lines of resolved Store cells
    /// (`store_cache.rs`, the protocol compiled code uses too).
    pub store_cache: Vec<Box<[StoreCacheLine]>>,
}

/// Where `print` writes and `readLine` reads. The bridge plugs in Python's `sys.stdout`.
pub trait HostIo {
    fn write_line(&mut self, line: &str);
    /// One line without its newline; `None` at end of input.
    fn read_line(&mut self) -> Option<String>;
    /// An error the host hit in the last `write_line` / `read_line` (e.g. a Python output
    /// hook that raised); `print` and `readLine` fail with it. Default: none.
    fn take_error(&mut self) -> Option<SomaError> {
        None
    }
}

/// Process stdin/stdout.
pub struct StdIo;

impl HostIo for StdIo {
    fn write_line(&mut self, line: &str) {
        let mut out = std::io::stdout().lock();
        // A closed stdout is not a SOMA error; the reference ignores it too (print succeeds).
        let _ = writeln!(out, "{line}");
    }
    fn read_line(&mut self) -> Option<String> {
        let mut s = String::new();
        match std::io::stdin().lock().read_line(&mut s) {
            Ok(0) | Err(_) => None,
            Ok(_) => {
                if s.ends_with('\n') {
                    s.pop();
                    if s.ends_with('\r') {
                        s.pop();
                    }
                }
                Some(s)
            }
        }
    }
}

/// Host callback for host builtins (`BuiltinId::Host(id)`): runs builtin `id` on `vm`,
/// returns a status (`SOMA_OK`, or `SOMA_ERROR` after `soma_rt_set_error`).
pub type HostCall = unsafe extern "C" fn(user: *mut std::ffi::c_void, vm: *mut Vm, id: u32) -> i32;

/// Host callback rendering a foreign object for `print` (Python's `repr`). Writes at most
/// `cap` bytes of UTF-8 to `buf` and returns the full length.
pub type ForeignRepr =
    unsafe extern "C" fn(user: *mut std::ffi::c_void, handle: u64, buf: *mut u8, cap: usize) -> usize;

/// Tier-up hook a JIT installs (see [`Vm::set_tier_up`]): called with a Block that is about to
/// run and has no native entry: by executors when its `exec_count` equals the threshold, by
/// compiled code on every call of it ([`Vm::tier_up_now`]). It may install
/// `BlockObj::native_entry`; it must not run SOMA code. A compile failure simply leaves the
/// entry empty (the hook should remember it and return at once next time): the Block keeps
/// being interpreted.
pub type TierUpHook = fn(vm: &mut Vm, block: Value);

/// Install hook a JIT sets while it has code compiling off the main thread (see
/// [`Vm::set_install_hook`]): called at the safepoints where the tier-up hook could run (before
/// a value is executed, in an executor or from compiled code) and at every host poll (which
/// compiled loops reach every [`POLL_INTERVAL`] rounds), so finished code is installed there.
/// Like the tier-up hook, it may set `BlockObj::native_entry`s and must not run SOMA code.
pub type InstallHook = fn(vm: &mut Vm);

/// Host poll hook (see [`Vm::set_poll`]): called every [`POLL_INTERVAL`] block entries so a
/// host can stop a runaway program (the bridge runs Python's signal handlers for Ctrl-C).
/// An `Err` aborts the block entry like any runtime error.
pub type PollHook = fn(vm: &mut Vm, user: *mut std::ffi::c_void) -> RtResult<()>;

pub use crate::limits::POLL_INTERVAL;

/// Polls compiled code may take early in a row while a host hook waits to run (see
/// [`Vm::poll_ahead`]): the hook then runs at least every 9 intervals, 36,864 block entries.
pub const MAX_EARLY_POLLS_IN_A_ROW: u32 = 8;

/// Byte offsets of the `Vm` fields compiled code reads and writes inline. The JIT is linked
/// into the same binary as the runtime, so `offset_of!` here is the layout it runs against.
pub struct JitLayout;

impl JitLayout {
    /// `u32`: block entries left until the poll hook runs (`Vm::poll_now` at zero).
    pub const POLL_COUNTDOWN: i32 = std::mem::offset_of!(Vm, poll_countdown) as i32;
    /// `usize`: block executions in progress; compiled code counts the frames of inlined
    /// bodies it keeps virtual here (see [`Vm::push_frames_uncounted`]).
    pub const BLOCK_DEPTH: i32 = std::mem::offset_of!(Vm, block_depth) as i32;
    /// `usize`: the depth limit.
    pub const MAX_DEPTH: i32 = std::mem::offset_of!(Vm, max_depth) as i32;
    /// `usize`: shadow-stack slots in use (`shadow_reserve` / `shadow_release` inline).
    pub const SHADOW_TOP: i32 = std::mem::offset_of!(Vm, shadow_top) as i32;
    /// `*mut Value`: the first shadow-stack slot ([`SHADOW_STACK_SLOTS`] of them).
    pub const SHADOW_BASE: i32 = std::mem::offset_of!(Vm, shadow_base) as i32;
    /// `*mut Value`, `usize`, `usize`: the AL's buffer, length and capacity ([`RawStack`]).
    pub const AL_PTR: i32 = (std::mem::offset_of!(Vm, al) + std::mem::offset_of!(AlStack, ptr)) as i32;
    pub const AL_LEN: i32 = (std::mem::offset_of!(Vm, al) + std::mem::offset_of!(AlStack, len)) as i32;
    pub const AL_CAP: i32 = (std::mem::offset_of!(Vm, al) + std::mem::offset_of!(AlStack, cap)) as i32;
    /// `*mut Frame`, `usize`, `usize`: the frame stack's buffer, length and capacity.
    pub const FRAMES_PTR: i32 =
        (std::mem::offset_of!(Vm, frames) + std::mem::offset_of!(RawStack<Frame>, ptr)) as i32;
    pub const FRAMES_LEN: i32 =
        (std::mem::offset_of!(Vm, frames) + std::mem::offset_of!(RawStack<Frame>, len)) as i32;
    pub const FRAMES_CAP: i32 =
        (std::mem::offset_of!(Vm, frames) + std::mem::offset_of!(RawStack<Frame>, cap)) as i32;
    /// `Frame` size and fields: the Register root (null: none), the Block, the alias flag (u8).
    pub const FRAME_SIZE: i32 = std::mem::size_of::<Frame>() as i32;
    pub const FRAME_REGISTER: i32 = std::mem::offset_of!(Frame, register) as i32;
    pub const FRAME_BLOCK: i32 = std::mem::offset_of!(Frame, block_or_void) as i32;
    pub const FRAME_ALIAS: i32 = std::mem::offset_of!(Frame, top_level_alias) as i32;
    /// `usize`: the lowest native stack address block execution may use.
    pub const STACK_LIMIT: i32 = std::mem::offset_of!(Vm, stack_limit) as i32;
}

// Compiled code writes a frame's Register as a null pointer for "none".
const _: () = assert!(std::mem::size_of::<Option<CellPtr>>() == 8);

/// The AL's storage.
pub type AlStack = RawStack<Value>;

/// A vector kept as its raw parts in a known layout (`repr(C)`: pointer, length, capacity),
/// so that compiled code pushes and pops inline (while `len < cap`, and `len > 0`) and calls a
/// helper otherwise: the AL and the frame stack. Derefs to the slice, bottom first.
#[repr(C)]
pub struct RawStack<T: Copy> {
    ptr: NonNull<T>,
    len: usize,
    cap: usize,
}

impl<T: Copy> Default for RawStack<T> {
    fn default() -> RawStack<T> {
        RawStack::from_vec(Vec::new())
    }
}

impl<T: Copy> RawStack<T> {
    pub fn from_vec(v: Vec<T>) -> RawStack<T> {
        let mut v = std::mem::ManuallyDrop::new(v);
        RawStack {
            ptr: NonNull::new(v.as_mut_ptr()).expect("a Vec's pointer is never null"),
            len: v.len(),
            cap: v.capacity(),
        }
    }

    /// Run `f` on the stack as a `Vec` (for the operations that may reallocate).
    fn edit<R>(&mut self, f: impl FnOnce(&mut Vec<T>) -> R) -> R {
        /// Puts the parts back, also when `f` unwinds.
        struct Parts<'a, T: Copy> {
            stack: &'a mut RawStack<T>,
            vec: std::mem::ManuallyDrop<Vec<T>>,
        }
        impl<T: Copy> Drop for Parts<'_, T> {
            fn drop(&mut self) {
                let vec = &mut self.vec;
                self.stack.ptr = NonNull::new(vec.as_mut_ptr()).expect("a Vec's pointer is never null");
                self.stack.len = vec.len();
                self.stack.cap = vec.capacity();
            }
        }
        // SAFETY: (ptr, len, cap) are the parts of a `Vec<T>` (from `from_vec` or an earlier
        // `edit`) and no other owner exists; `Parts` hands them back before anyone else looks.
        let vec = unsafe { Vec::from_raw_parts(self.ptr.as_ptr(), self.len, self.cap) };
        let mut parts = Parts {
            stack: self,
            vec: std::mem::ManuallyDrop::new(vec),
        };
        f(&mut parts.vec)
    }

    #[inline]
    pub fn push(&mut self, v: T) {
        if self.len < self.cap {
            // SAFETY: `len < cap`: the slot is inside the allocation.
            unsafe { self.ptr.as_ptr().add(self.len).write(v) };
            self.len += 1;
        } else {
            self.edit(|vec| vec.push(v));
        }
    }

    #[inline]
    pub fn pop(&mut self) -> Option<T> {
        if self.len == 0 {
            return None;
        }
        self.len -= 1;
        // SAFETY: `len` was in bounds and slots below it hold initialised values.
        Some(unsafe { self.ptr.as_ptr().add(self.len).read() })
    }

    pub fn insert(&mut self, i: usize, v: T) {
        self.edit(|vec| vec.insert(i, v));
    }

    pub fn remove(&mut self, i: usize) -> T {
        self.edit(|vec| vec.remove(i))
    }

    pub fn clear(&mut self) {
        self.len = 0;
    }

    pub fn truncate(&mut self, len: usize) {
        self.len = self.len.min(len);
    }

    pub fn extend(&mut self, values: impl IntoIterator<Item = T>) {
        self.edit(|vec| vec.extend(values));
    }
}

impl<T: Copy> std::ops::Deref for RawStack<T> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        // SAFETY: `ptr` is valid for `len` initialised values (a Vec's parts).
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

impl<T: Copy> std::ops::DerefMut for RawStack<T> {
    fn deref_mut(&mut self) -> &mut [T] {
        // SAFETY: as in `deref`, and `&mut self` is the only access.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }
}

impl<T: Copy> Drop for RawStack<T> {
    fn drop(&mut self) {
        // SAFETY: the parts of a `Vec<T>` no one else owns (`T: Copy` needs no drop).
        drop(unsafe { Vec::from_raw_parts(self.ptr.as_ptr(), self.len, self.cap) });
    }
}

/// The JIT shadow stack's slots, zeroed by the allocator instead of written one by one. A
/// slot is set to Void when it is reserved (`shadow_reserve`, and compiled code's inline
/// reservation), and nothing reads one above the top (the collector scans below it), so the
/// initial contents are never seen: from `calloc`, the 512 KiB cost a VM only the pages its
/// compiled code reaches. Filled with Void they were written in full at every `Vm::new`: 128
/// page faults for a VM whose memory is fresh (a process's first VM, or one made while
/// earlier VMs live).
fn fresh_shadow_stack() -> Box<[Value]> {
    let zeroed = Box::<[Value]>::new_zeroed_slice(SHADOW_STACK_SLOTS);
    // SAFETY: `Value` is a transparent `u64`, for which all-zero bits are a valid value (the
    // double 0.0); no slot is read before it is reserved and set to Void (above).
    unsafe { zeroed.assume_init() }
}

pub struct Vm {
    pub(crate) al: AlStack,
    pub(crate) graph: Graph,
    /// `frames[0]` is the top level, whose Register persists across runs.
    pub(crate) frames: RawStack<Frame>,
    /// Block executions in progress (frames that are not top-level aliases).
    block_depth: usize,
    pub(crate) modules: Vec<Rc<LoadedModule>>,
    /// Builtin objects by name (core first, then host builtins).
    pub(crate) builtins: Vec<(String, Value)>,
    pins: Vec<Option<Value>>,
    free_pins: Vec<usize>,
    shadow: Box<[Value]>,
    /// `shadow.as_mut_ptr()`, kept for compiled code (the boxed slice never moves).
    shadow_base: *mut Value,
    shadow_top: usize,
    pub(crate) error: Option<SomaError>,
    pub(crate) max_depth: usize,
    pub(crate) io: Box<dyn HostIo>,
    pub(crate) host_call: Option<(HostCall, *mut std::ffi::c_void)>,
    pub(crate) foreign_repr: Option<(ForeignRepr, *mut std::ffi::c_void)>,
    /// JIT tier-up: the hook and the execution count at which it fires.
    tier_up: Option<(TierUpHook, u64)>,
    /// Set while the JIT has compiles in flight: one branch per block entry otherwise.
    install: Option<(InstallHook, Arc<AtomicUsize>)>,
    /// Host poll hook and the block entries left until it is called next.
    poll: Option<(PollHook, *mut std::ffi::c_void)>,
    /// Step budget, time limit and interrupt flag (armed into `poll_countdown`).
    budget: crate::limits::Budget,
    /// Block entries left until the poll hook runs. Compiled chain loops decrement it inline
    /// (offset in [`JitLayout`]) and call `poll_now` when it reaches zero.
    poll_countdown: u32,
    /// Polls [`Vm::poll_ahead`] took since the host hook last ran (see there).
    early_polls_in_a_row: u32,
    /// Lowest native stack address block execution may use (see [`Vm::stack_is_low`]). A `Vm`
    /// is not `Send`, so the thread that created it is the only one that runs it.
    stack_limit: usize,
    /// Source name of the module whose instruction positioned the last error (the bridge
    /// reports it as the exception's `.source`, as the Python tier does).
    error_source: Option<String>,
    /// State owned by the JIT (compiled code, caches); dropped with the VM.
    jit_state: Option<Box<dyn std::any::Any>>,
    /// Declared last: dropped after everything that holds values.
    pub(crate) heap: Heap,
}

impl Vm {
    /// A VM with the core builtins installed in the Store.
    pub fn new() -> Box<Vm> {
        let mut heap = Heap::new();
        let graph = Graph::new(&mut heap);
        let mut vm = Box::new(Vm {
            al: AlStack::default(),
            graph,
            frames: RawStack::from_vec(vec![Frame::for_block(Value::VOID)]),
            block_depth: 0,
            modules: Vec::new(),
            builtins: Vec::new(),
            pins: Vec::new(),
            free_pins: Vec::new(),
            shadow: fresh_shadow_stack(),
            shadow_base: std::ptr::null_mut(),
            shadow_top: 0,
            error: None,
            max_depth: DEFAULT_MAX_DEPTH,
            io: Box::new(StdIo),
            host_call: None,
            foreign_repr: None,
            tier_up: None,
            install: None,
            poll: None,
            budget: crate::limits::Budget::default(),
            poll_countdown: POLL_INTERVAL,
            early_polls_in_a_row: 0,
            stack_limit: crate::stack::thread_stack_limit(),
            error_source: None,
            jit_state: None,
            heap,
        });
        vm.shadow_base = vm.shadow.as_mut_ptr();
        vm.install_builtins();
        vm
    }

    fn install_builtins(&mut self) {
        for &(name, id) in CORE_BUILTINS {
            self.define_builtin(name, id);
        }
        self.graph.store_write(&mut self.heap, &["True"], Value::TRUE);
        self.graph.store_write(&mut self.heap, &["False"], Value::FALSE);
        self.graph.store_write(&mut self.heap, &["Nil"], Value::NIL);
        self.graph.store_write(&mut self.heap, &["Void"], Value::VOID);
    }

    /// Create a builtin object and store it at the dotted path `name`.
    fn define_builtin(&mut self, name: &str, id: BuiltinId) -> Value {
        let v = self.heap.alloc_builtin(id, name);
        self.builtins.push((name.to_string(), v));
        let comps: Vec<&str> = name.split('.').collect();
        self.graph.store_write(&mut self.heap, &comps, v);
        v
    }

    /// Register a host builtin (e.g. `use.python.call`) at the dotted Store path `name`.
    /// Executing it calls the host callback with `id`.
    pub fn define_host_builtin(&mut self, name: &str, id: u32) -> Value {
        self.define_builtin(name, BuiltinId::Host(id))
    }

    /// A host builtin object that lives at no Store path (e.g. a Python `soma.Builtin` pushed
    /// onto the AL by the host). Rooted for the VM's whole life, like every builtin.
    pub fn alloc_host_builtin(&mut self, name: &str, id: u32) -> Value {
        let v = self.heap.alloc_builtin(BuiltinId::Host(id), name);
        self.builtins.push((name.to_string(), v));
        v
    }

    /// The Block of the innermost block execution (`>block`), `None` at top level.
    pub fn current_block(&self) -> Option<Value> {
        self.frames.last().and_then(Frame::block)
    }

    /// Whether `block` runs in one of the `within` innermost block frames: called before a
    /// Block's own frame is pushed, true means the Block is recursing. (Inlined bodies of
    /// compiled code have no frame here.)
    pub fn is_running(&self, block: Value, within: usize) -> bool {
        self.frames.iter().rev().take(within).any(|f| f.block_or_void == block)
    }

    /// The AL itself, for hosts that edit it like a list (insert, replace, delete).
    pub fn al_mut(&mut self) -> &mut AlStack {
        &mut self.al
    }

    pub fn set_host_call(&mut self, f: Option<HostCall>, user: *mut std::ffi::c_void) {
        self.host_call = f.map(|f| (f, user));
    }

    pub fn set_foreign_repr(&mut self, f: Option<ForeignRepr>, user: *mut std::ffi::c_void) {
        self.foreign_repr = f.map(|f| (f, user));
    }

    pub fn set_io(&mut self, io: Box<dyn HostIo>) {
        self.io = io;
    }

    pub fn set_max_depth(&mut self, depth: usize) {
        self.max_depth = depth;
    }

    pub fn max_depth(&self) -> usize {
        self.max_depth
    }

    // ----- accessors for hosts and tests -----

    pub fn al(&self) -> &[Value] {
        &self.al
    }

    pub fn push(&mut self, v: Value) {
        self.al.push(v);
    }

    pub fn pop(&mut self) -> Option<Value> {
        self.al.pop()
    }

    pub fn heap(&mut self) -> &mut Heap {
        &mut self.heap
    }

    pub fn heap_stats(&self) -> HeapStats {
        self.heap.stats()
    }

    pub fn graph(&mut self) -> &mut Graph {
        &mut self.graph
    }

    pub fn graph_ref(&self) -> &Graph {
        &self.graph
    }

    /// The value at a Store path given as components (`None` if never created).
    pub fn read_store_path(&self, components: &[&str]) -> Option<Value> {
        self.graph.store_read(components)
    }

    /// Write a value at a Store path (auto-vivifying, CellRef write-through), as `!a.b`.
    pub fn write_store_path(&mut self, components: &[&str], v: Value) {
        self.graph.store_write(&mut self.heap, components, v);
    }

    /// The Store cell at a path, created (with parents) if needed, as `a.b.`.
    pub fn store_ref_path(&mut self, components: &[&str]) -> CellPtr {
        self.graph.store_ref(&mut self.heap, components)
    }

    /// The Register root of the innermost frame.
    pub fn register(&self) -> Option<CellPtr> {
        self.frames.last().expect("top-level frame").register
    }

    /// Nested block executions in progress.
    pub fn depth(&self) -> usize {
        self.block_depth
    }

    pub fn last_error(&self) -> Option<&SomaError> {
        self.error.as_ref()
    }

    /// Install (or remove) the host poll hook.
    pub fn set_poll(&mut self, hook: Option<PollHook>, user: *mut std::ffi::c_void) {
        self.poll = hook.map(|h| (h, user));
    }

    // ----- resource limits (limits.rs) -----

    /// Start a run's step budget and time limit (`None`: unlimited). Hosts call this before
    /// a top-level run (not before the runs a builtin makes inside it: those share it).
    pub fn begin_budget(&mut self, max_steps: Option<u64>, time_limit: Option<std::time::Duration>) {
        self.poll_countdown = self.budget.begin(max_steps, time_limit);
    }

    /// Steps (block executions) taken since [`Vm::begin_budget`].
    pub fn steps_taken(&self) -> u64 {
        self.budget.steps_taken(self.poll_countdown)
    }

    /// The interrupt flag: setting it (from any thread) stops the run in progress at its next
    /// poll point with `Interrupted` (or the next run, if none is in progress).
    pub fn interrupt_handle(&self) -> std::sync::Arc<std::sync::atomic::AtomicBool> {
        self.budget.interrupt_handle()
    }

    /// Limit on the bytes the heap and the AL may hold (see `heap.rs`, "Memory limit").
    pub fn set_max_memory(&mut self, bytes: usize) {
        self.heap.set_max_bytes(bytes);
    }

    pub fn max_memory(&self) -> usize {
        self.heap.max_bytes()
    }

    /// Bytes of the values on the AL (what the memory limit counts of it; its buffer is at
    /// most twice that while it grows, and [`Vm::trim_al`] gives the rest back).
    #[inline]
    fn al_bytes(&self) -> usize {
        self.al.len * std::mem::size_of::<Value>()
    }

    /// Give back the AL buffer's unused room when it is mostly empty (hosts call this at the
    /// end of a run, e.g. after a limit error left a huge AL that was then cleared).
    pub fn trim_al(&mut self) {
        if self.al.cap > 4096 && self.al.len < self.al.cap / 4 {
            self.al.edit(|v| v.shrink_to(v.len() * 2));
        }
    }

    /// Remember the module whose instruction positions an error (executors call this
    /// just before `SomaError::at` on an error that is not positioned yet).
    pub fn note_error_module(&mut self, module: &LoadedModule) {
        self.error_source = Some(module.module.source.clone());
    }

    /// `e` positioned at the instruction that raised it (`line:col` of a Code of `module`),
    /// unless it already has a position (an error from deeper code keeps its own); an error
    /// positioned here notes `module` as its source. The one positioning rule of the
    /// executor and compiled code.
    pub fn position_error(&mut self, e: SomaError, line: u32, col: u32, module: &LoadedModule) -> SomaError {
        if !e.is_positioned() {
            self.note_error_module(module);
        }
        e.at(line, col)
    }

    /// The source name of the module noted for the last positioned error, and forget it.
    pub fn take_error_source(&mut self) -> Option<String> {
        self.error_source.take()
    }

    pub fn take_error(&mut self) -> Option<SomaError> {
        self.error.take()
    }

    pub fn set_error(&mut self, e: SomaError) {
        self.error = Some(e);
    }

    /// Record an error raised by the host (bridge), e.g. a LexError from the Python lexer.
    pub fn set_error_parts(&mut self, class: ErrorClass, message: &str, line: u32, col: u32) {
        self.error = Some(SomaError {
            class,
            message: message.to_string(),
            line,
            col,
        });
    }

    /// Render a value as `print` does.
    pub fn print_form(&self, v: Value) -> String {
        let repr = |v: Value| -> String {
            let p = v.as_foreign_obj().expect("foreign");
            // SAFETY: a Foreign value points at a live ForeignObj.
            let handle = unsafe { (*p.as_ptr()).handle };
            match self.foreign_repr {
                Some((f, user)) => {
                    let mut buf = vec![0u8; 256];
                    // SAFETY: the host contract: write at most `cap` bytes, return the length.
                    let n = unsafe { f(user, handle, buf.as_mut_ptr(), buf.len()) };
                    if n > buf.len() {
                        buf.resize(n, 0);
                        // SAFETY: as above, with a buffer of the announced size.
                        unsafe { f(user, handle, buf.as_mut_ptr(), buf.len()) };
                    }
                    buf.truncate(n);
                    String::from_utf8_lossy(&buf).into_owned()
                }
                None => format!("<{}>", v.type_name()),
            }
        };
        let block = |v: Value| -> String {
            let code = self
                .block_obj(v)
                .and_then(|b| Some(&self.module(b.module)?.module.codes[b.code as usize]));
            code.map_or_else(|| "Block(body=[])".into(), crate::render::block_form)
        };
        crate::render::print_form(v, &repr, &block)
    }

    // ----- modules -----

    /// Decode and load a module; returns its id. Its constants and blocks become roots.
    pub fn load_module_bytes(&mut self, bytes: &[u8]) -> RtResult<u32> {
        let module = crate::decode::decode_module(bytes)
            .map_err(|e| SomaError::runtime(e.to_string()))?;
        Ok(self.load_module(module))
    }

    /// Load an already decoded module; returns its id.
    pub fn load_module(&mut self, module: Module) -> u32 {
        let id = self.modules.len() as u32;
        let blocks: Vec<Value> = (0..module.codes.len() as u32)
            .map(|code| self.heap.alloc_block(id, code))
            .collect();
        let consts = module
            .codes
            .iter()
            .map(|code| {
                code.consts
                    .iter()
                    .map(|c| match c {
                        Const::Int(i) => crate::int::from_i64(&mut self.heap, *i),
                        Const::BigInt(b) => crate::int::from_bigint(&mut self.heap, b.clone()),
                        Const::Str(s) => self.heap.alloc_str(s),
                        Const::Block(i) => blocks[*i as usize],
                    })
                    .collect()
            })
            .collect();
        let store_cache = module
            .codes
            .iter()
            .map(|code| {
                (0..code.paths.len())
                    .map(|_| StoreCacheLine::empty())
                    .collect()
            })
            .collect();
        self.modules.push(Rc::new(LoadedModule {
            module,
            consts,
            blocks,
            store_cache,
        }));
        id
    }

    pub fn module(&self, id: u32) -> Option<&Rc<LoadedModule>> {
        self.modules.get(id as usize)
    }

    /// The Block object behind a Block value.
    pub fn block_obj<'a>(&self, block: Value) -> Option<&'a BlockObj> {
        // SAFETY: Block objects are owned by loaded modules, which are roots for the VM's
        // whole life, so the object outlives any use through this VM.
        block.as_block_obj().map(|p| unsafe { &*p.as_ptr() })
    }

    // ----- JIT tier-up -----

    /// Install (or remove, with `None`) the tier-up hook. `threshold` is the number of
    /// executions a Block runs interpreted before the hook sees it (0: before the first run;
    /// `u64::MAX`: never).
    pub fn set_tier_up(&mut self, hook: Option<TierUpHook>, threshold: u64) {
        self.tier_up = hook.map(|h| (h, threshold));
    }

    /// Set (or clear, with `None`) the hook that installs code finished off the main thread,
    /// with its signal: safepoints call the hook only while the signal is nonzero (a load
    /// instead of a call; the compile thread may change it, hence an atomic). The JIT sets it
    /// while compiles are in flight and clears it when none are.
    pub fn set_install_hook(&mut self, hook: Option<(InstallHook, Arc<AtomicUsize>)>) {
        self.install = hook;
    }

    /// The install hook, when its signal says there may be code to install.
    #[inline]
    fn install_due(&self) -> Option<InstallHook> {
        match &self.install {
            Some((hook, signal)) if signal.load(Ordering::Acquire) != 0 => Some(*hook),
            _ => None,
        }
    }

    /// The installed hook's threshold, if any.
    pub fn tier_up_threshold(&self) -> Option<u64> {
        self.tier_up.map(|(_, t)| t)
    }

    /// Slot for the JIT's own state (kept alive as long as the VM).
    pub fn jit_state(&mut self) -> &mut Option<Box<dyn std::any::Any>> {
        &mut self.jit_state
    }

    /// Executors call this just before running `block`: fires the tier-up hook when the
    /// Block's execution count reaches the threshold (shifted by the Block's `tier_up_shift`) and
    /// it has no native entry yet.
    #[inline]
    pub fn maybe_tier_up(&mut self, block: Value) {
        if let Some(install) = self.install_due() {
            install(self);
        }
        if let Some((hook, threshold)) = self.tier_up {
            if let Some(b) = self.block_obj(block) {
                if b.exec_count.get() == b.tier_up_due(threshold) && b.native_entry.get().is_none() {
                    hook(self, block);
                }
            }
        }
    }

    /// Compiled code calls this before running `block`: native code compiles its callees on
    /// their first call from it, whatever their count. Fires the tier-up hook when the Block
    /// has no native entry (the hook remembers Blocks it could not compile).
    #[inline]
    pub fn tier_up_now(&mut self, block: Value) {
        if let Some(install) = self.install_due() {
            install(self);
        }
        if let Some((hook, _)) = self.tier_up {
            if self.block_obj(block).is_some_and(|b| b.native_entry.get().is_none()) {
                hook(self, block);
            }
        }
    }

    // ----- block frames -----

    /// True when less than the reserve of native stack is left (block execution is then a
    /// recursion error rather than a crash).
    #[inline]
    pub fn stack_is_low(&self) -> bool {
        let marker = 0u8;
        let sp = &marker as *const u8 as usize;
        sp < self.stack_limit
    }

    /// The poll's turn (a block entry found the countdown at zero): count the steps, check
    /// the limits (steps, time, interrupt, the AL against the memory limit), re-arm the
    /// countdown, and run the host hook, if one is installed.
    pub fn poll_now(&mut self) -> RtResult<()> {
        self.check_limits(POLL_INTERVAL)?;
        self.early_polls_in_a_row = 0;
        // Also an install point: compiled loops that run in place (no block entry, no call)
        // reach no other safepoint, and they are where newer code matters most.
        if let Some(install) = self.install_due() {
            install(self);
        }
        match self.poll {
            Some((hook, user)) => hook(self, user),
            None => Ok(()),
        }
    }

    /// The poll's turn at the entry of a body compiled code inlined (where the host must not
    /// run: compiled code may hold values outside any root): the limits only. The host hook
    /// is owed, so the countdown is re-armed with 1 and the next entry polls again (every
    /// loop has an entry that polls fully: a call or a `chain` round).
    pub fn poll_inlined(&mut self) -> RtResult<()> {
        let interval = if self.poll.is_some() { 1 } else { POLL_INTERVAL };
        self.check_limits(interval)
    }

    /// Compiled code about to make more block entries than the countdown has left, without
    /// looking at it in between (a poll region, docs/jit.md): take the poll that is due now,
    /// if it could stop nothing ([`crate::limits::Budget::poll_early`], and the memory held
    /// within the limit). Returns the countdown re-armed, or 0 when the poll must be taken
    /// where it is due (compiled code then leaves for the executor, which takes it exactly).
    /// Neither collects nor runs the host hook (compiled code may hold unrooted values), so
    /// with a hook installed, after [`MAX_EARLY_POLLS_IN_A_ROW`] of them the next is declined:
    /// the executor's poll runs the hook (the bridge's lets other Python threads have the
    /// GIL, and a loop whose every poll fell due in a region would never let them).
    #[cold]
    pub fn poll_ahead(&mut self) -> u32 {
        if self.poll.is_some() && self.early_polls_in_a_row >= MAX_EARLY_POLLS_IN_A_ROW {
            return 0;
        }
        if self.memory_over_limit() {
            return 0;
        }
        match self.budget.poll_early(self.poll_countdown, POLL_INTERVAL) {
            Some(n) => {
                self.poll_countdown = n;
                self.early_polls_in_a_row += 1;
                n
            }
            None => 0,
        }
    }

    #[cold]
    fn check_limits(&mut self, interval: u32) -> RtResult<()> {
        match self.budget.poll(interval) {
            Ok(n) => self.poll_countdown = n,
            Err((e, n)) => {
                self.poll_countdown = n;
                return Err(e);
            }
        }
        if self.memory_over_limit() {
            return Err(msg::memory_limit(self.heap.max_bytes()));
        }
        Ok(())
    }

    /// The AL and the heap together hold more than the memory limit. Polls look: the AL grows
    /// without safepoints (compiled code pushes inline); between two polls it can grow by a
    /// bounded amount only.
    fn memory_over_limit(&self) -> bool {
        self.al_bytes().saturating_add(self.heap.live_bytes()) > self.heap.max_bytes()
    }

    /// A compiled block running its own next `chain` iteration: the frame stays (same depth),
    /// its Register is dropped, as `leave_block` + `enter_block` of the same Block would.
    /// Compiled code calls this only for blocks whose Register is on the heap; it does the
    /// entry counting (poll countdown, `exec_count`) inline.
    pub fn restart_frame(&mut self) {
        if let Some(f) = self.frames.last_mut() {
            if !f.top_level_alias {
                f.register = None;
            }
        }
    }

    /// Begin executing `block`: depth check, fresh Register, bump the tier-up counter.
    pub fn enter_block(&mut self, block: Value) -> RtResult<()> {
        // Counted down with or without a hook (compiled code counts the same way): a step.
        self.poll_countdown -= 1;
        if self.poll_countdown == 0 {
            self.poll_now()?;
        }
        self.enter_frame(block)
    }

    /// Begin a block execution whose body compiled code runs inline in its caller: as
    /// [`Vm::enter_block`] (a step, count, depth check, frame with a fresh Register) except
    /// that the host is not polled (see [`Vm::poll_inlined`]).
    pub fn enter_inlined(&mut self, block: Value) -> RtResult<()> {
        self.poll_countdown -= 1;
        if self.poll_countdown == 0 {
            self.poll_inlined()?;
        }
        self.enter_frame(block)
    }

    /// The frame part of a block entry: count, depth check, frame with a fresh Register.
    fn enter_frame(&mut self, block: Value) -> RtResult<()> {
        // Counted even when the depth check fails, as the Python tier counts.
        if let Some(b) = self.block_obj(block) {
            b.exec_count.set(b.exec_count.get() + 1);
        }
        if self.block_depth >= self.max_depth {
            return Err(msg::recursion(self.max_depth));
        }
        self.frames.push(Frame::for_block(block));
        self.block_depth += 1;
        Ok(())
    }

    /// Push frames for block executions already counted in the depth: compiled code keeps
    /// the frames of some inlined bodies virtual (it only counts them) and makes them real,
    /// outermost first, before anything that needs them (an error or deoptimisation exit, a
    /// call of an unknown value).
    pub fn push_frames_uncounted(&mut self, blocks: &[Value]) {
        self.frames.extend(blocks.iter().map(|&b| Frame::for_block(b)));
    }

    /// `_.x.rest` where `_.x` holds `v` but exists only in compiled code (a virtual Register
    /// name, which has no children): the value found below the cell `v` refers to, as the
    /// read would find it through `_.x` holding that CellRef.
    pub fn read_below(&self, v: Value, path: &crate::decode::Path) -> RtResult<Value> {
        v.as_cell()
            .and_then(|cell| Graph::lookup_below(cell, &path.syms[1..]))
            .map(|c| c.value())
            .ok_or_else(|| msg::undefined_register(&path.display))
    }

    /// End the `n` innermost block executions.
    pub fn leave_blocks(&mut self, n: usize) {
        for _ in 0..n {
            self.leave_block();
        }
    }

    /// `!_.name` of `v` into the Register of the frame `from_top` below the innermost one,
    /// without a safepoint (compiled code materialising a virtual Register while it still
    /// holds unrooted values). Write-through rules as `set_reg`.
    pub fn reg_write_at(&mut self, from_top: usize, name: crate::sym::Sym, v: Value) {
        let i = self.frames.len() - 1 - from_top;
        let frame = &mut self.frames[i];
        self.graph.reg_write(&mut self.heap, &mut frame.register, &[name], v);
    }

    /// Make `cell` the Register child `name` of the frame `from_top` below the innermost one,
    /// without a safepoint: compiled code materialising a record name (a virtual Register
    /// name whose cell it made itself, `record.rs`). The Register must not have that child.
    pub fn reg_attach_at(&mut self, from_top: usize, name: crate::sym::Sym, cell: CellPtr) {
        let i = self.frames.len() - 1 - from_top;
        let frame = &mut self.frames[i];
        let no_path: [crate::sym::Sym; 0] = [];
        let root = self.graph.reg_ref(&mut self.heap, &mut frame.register, &no_path);
        debug_assert!(root.child_sym(name).is_none(), "a record name is materialised once");
        root.insert_child_sym(name, cell);
    }

    /// A CellRef to the Register root `_` of the frame `from_top` below the innermost one
    /// (created if the Register has none yet), as `_.` run in that frame. No safepoint.
    pub fn reg_root_ref_at(&mut self, from_top: usize) -> Value {
        let i = self.frames.len() - 1 - from_top;
        let frame = &mut self.frames[i];
        let no_path: [crate::sym::Sym; 0] = [];
        self.graph.reg_ref(&mut self.heap, &mut frame.register, &no_path).as_value()
    }

    /// `!_.` of `v` in the frame `from_top` below the innermost one (`setref_reg` on the
    /// root), without a safepoint.
    pub fn reg_set_root_at(&mut self, from_top: usize, v: Value) {
        let i = self.frames.len() - 1 - from_top;
        let frame = &mut self.frames[i];
        let no_path: [crate::sym::Sym; 0] = [];
        self.graph.reg_setref(&mut self.heap, &mut frame.register, &no_path, v);
    }

    /// End the innermost block execution (its Register becomes garbage unless referenced).
    pub fn leave_block(&mut self) {
        let is_block = self.frames.len() > 1 && !self.frames.last().is_some_and(|f| f.top_level_alias);
        debug_assert!(is_block, "leave_block without enter_block");
        if is_block {
            self.frames.pop();
            self.block_depth -= 1;
        }
    }

    /// Prepare to run a top-level program. At top level nothing changes; in the middle of a
    /// block (a builtin running a program) a frame aliasing the top-level Register is pushed,
    /// keeping the caller's block and depth. Returns whether a frame was pushed; pass that to
    /// [`Vm::leave_top_level`].
    pub fn enter_top_level(&mut self) -> bool {
        if self.frames.len() == 1 {
            return false;
        }
        let block = self.frames.last().map_or(Value::VOID, |f| f.block_or_void);
        self.frames.push(Frame {
            register: self.frames[0].register,
            block_or_void: block,
            top_level_alias: true,
        });
        true
    }

    /// Undo [`Vm::enter_top_level`], keeping what the program did to the top-level Register.
    pub fn leave_top_level(&mut self, pushed: bool) {
        if pushed {
            let alias = self.frames.pop().expect("alias frame");
            debug_assert!(alias.top_level_alias);
            self.frames[0].register = alias.register;
        }
    }

    // ----- host pins (handles the bridge holds) -----

    /// Keep `v` alive until `unpin`. Returns a non-zero handle.
    pub fn pin(&mut self, v: Value) -> u64 {
        match self.free_pins.pop() {
            Some(i) => {
                self.pins[i] = Some(v);
                i as u64 + 1
            }
            None => {
                self.pins.push(Some(v));
                self.pins.len() as u64
            }
        }
    }

    /// The value behind a live handle.
    pub fn pinned(&self, handle: u64) -> Option<Value> {
        let i = usize::try_from(handle).ok()?.checked_sub(1)?;
        self.pins.get(i).copied().flatten()
    }

    /// Release a handle. Returns false if it was not live.
    pub fn unpin(&mut self, handle: u64) -> bool {
        let Some(i) = usize::try_from(handle).ok().and_then(|h| h.checked_sub(1)) else {
            return false;
        };
        match self.pins.get_mut(i) {
            Some(slot @ Some(_)) => {
                *slot = None;
                self.free_pins.push(i);
                true
            }
            _ => false,
        }
    }

    // ----- JIT shadow stack -----

    /// Reserve `n` root slots (initialised to Void) and return the first. JIT code stores
    /// live values there before calling a safepoint helper; slots stay valid (never move)
    /// until released, in LIFO order.
    pub fn shadow_reserve(&mut self, n: usize) -> RtResult<*mut Value> {
        if n > SHADOW_STACK_SLOTS - self.shadow_top {
            return Err(msg::recursion(self.max_depth));
        }
        let base = self.shadow_top;
        self.shadow[base..base + n].fill(Value::VOID);
        self.shadow_top += n;
        Ok(&mut self.shadow[base] as *mut Value)
    }

    /// Reserve the `n` slots at the top, starting at `first`, as they are: compiled code that
    /// reserves its slots only when it leaves has filled them with live values (or Void).
    /// Panics when `first` is not the top or the slots do not fit (a bug in the caller).
    pub fn shadow_adopt(&mut self, first: *const u64, n: usize) {
        let top = self.shadow_top;
        assert!(
            n <= SHADOW_STACK_SLOTS - top && std::ptr::eq(first, self.shadow[top..].as_ptr() as *const u64),
            "shadow slots adopted away from the top"
        );
        self.shadow_top += n;
    }

    /// Release the `n` most recently reserved slots.
    pub fn shadow_release(&mut self, n: usize) {
        self.shadow_top = self.shadow_top.saturating_sub(n);
    }

    pub fn shadow_depth(&self) -> usize {
        self.shadow_top
    }

    // ----- collection -----

    /// Collect if the allocation budget is exhausted (or in stress mode). Call only where
    /// every live value is in a root (see `heap.rs`). Fails when the memory limit is
    /// exceeded after the collection (and the heap grew since the last such error).
    #[inline]
    pub fn safepoint(&mut self) -> RtResult<()> {
        if self.heap.should_collect() {
            self.collect_within_limit(0)
        } else {
            Ok(())
        }
    }

    /// A safepoint before an allocation of `bytes` (e.g. a `concat` result) whose operands
    /// are still rooted: fails, before anything is allocated, when the heap and the AL would
    /// then hold more than the memory limit even after a collection.
    #[inline]
    pub fn reserve(&mut self, bytes: usize) -> RtResult<()> {
        let held = self.heap.held_bytes().saturating_add(self.al_bytes());
        if self.heap.should_collect() || held.saturating_add(bytes) > self.heap.max_bytes() {
            self.collect_within_limit(bytes)
        } else {
            Ok(())
        }
    }

    #[cold]
    fn collect_within_limit(&mut self, bytes: usize) -> RtResult<()> {
        self.collect();
        let al = self.al_bytes();
        self.heap.check_limit(al, bytes)
    }

    /// A full mark-sweep collection from the VM's roots.
    pub fn collect(&mut self) {
        let heap = &mut self.heap;
        for &v in self.al.iter() {
            heap.mark_value(v);
        }
        heap.mark_cell(self.graph.store_root());
        for f in self.frames.iter() {
            if let Some(r) = f.register {
                heap.mark_cell(r);
            }
            heap.mark_value(f.block_or_void);
        }
        for m in &self.modules {
            for &b in &m.blocks {
                heap.mark_value(b);
            }
            for code in &m.consts {
                for &c in code {
                    heap.mark_value(c);
                }
            }
        }
        for (_, b) in &self.builtins {
            heap.mark_value(*b);
        }
        for v in self.pins.iter().flatten() {
            heap.mark_value(*v);
        }
        for &v in &self.shadow[..self.shadow_top] {
            heap.mark_value(v);
        }
        heap.trace();
        heap.sweep();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtins_and_constants_are_in_the_store() {
        let vm = Vm::new();
        assert_eq!(vm.graph.store_read(&["True"]), Some(Value::TRUE));
        assert_eq!(vm.graph.store_read(&["Void"]), Some(Value::VOID));
        let plus = vm.graph.store_read(&["+"]).unwrap();
        assert_eq!(vm.print_form(plus), "<builtin +>");
        let ty = vm.graph.store_read(&["debug", "type"]).unwrap();
        assert_eq!(ty.type_name(), "BuiltinBlock");
    }

    #[test]
    fn pins_keep_values_alive_and_handles_are_reused() {
        let mut vm = Vm::new();
        let s = vm.heap.alloc_str("pinned");
        let h = vm.pin(s);
        vm.heap.alloc_str("garbage");
        let before = vm.heap_stats().objects;
        vm.collect();
        assert_eq!(vm.heap_stats().objects, before - 1);
        assert_eq!(vm.pinned(h).unwrap().as_str(), Some("pinned"));
        assert!(vm.unpin(h));
        assert!(!vm.unpin(h));
        assert_eq!(vm.pinned(h), None);
        vm.collect();
        assert_eq!(vm.heap_stats().objects, before - 2);
        let h2 = vm.pin(Value::NIL);
        assert_eq!(h2, h, "slot reused");
        assert!(!vm.unpin(0));
    }

    #[test]
    fn shadow_stack_slots_are_roots() {
        let mut vm = Vm::new();
        let base = vm.shadow_reserve(2).unwrap();
        let s = vm.heap.alloc_str("spilled");
        // SAFETY: two slots were reserved at `base`.
        unsafe { *base.add(1) = s };
        vm.collect();
        assert_eq!(s.as_str(), Some("spilled"));
        vm.shadow_release(2);
        let before = vm.heap_stats().objects;
        vm.collect();
        assert_eq!(vm.heap_stats().objects, before - 1);
        assert!(vm.shadow_reserve(SHADOW_STACK_SLOTS + 1).is_err());
    }

    #[test]
    fn al_stack_behaves_like_a_vec() {
        let int = |i: i64| Value::small_int(i).unwrap();
        let mut al = AlStack::default();
        let mut model: Vec<Value> = Vec::new();
        for i in 0..100 {
            al.push(int(i));
            model.push(int(i));
        }
        assert_eq!(&*al, &model[..]);
        al.insert(3, int(-1));
        model.insert(3, int(-1));
        assert_eq!(al.remove(50), model.remove(50));
        al.extend([int(7), int(8)]);
        model.extend([int(7), int(8)]);
        al[0] = int(42);
        model[0] = int(42);
        assert_eq!(&*al, &model[..]);
        while let Some(v) = model.pop() {
            assert_eq!(al.pop(), Some(v));
        }
        assert_eq!(al.pop(), None);
        // A panic in the middle of a reallocating edit leaves a valid stack behind.
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            al.extend((0..1000).map(|i| if i == 500 { panic!("stop") } else { int(i) }));
        }));
        assert!(r.is_err());
        assert_eq!(al.len(), 500);
        assert_eq!(al.last(), Some(&int(499)));
        al.clear();
        assert!(al.is_empty());
    }

    #[test]
    fn depth_limit() {
        let mut vm = Vm::new();
        vm.set_max_depth(2);
        let m = vm.load_module(crate::encode::assemble("{ }").unwrap());
        let b = vm.module(m).unwrap().blocks[1];
        vm.enter_block(b).unwrap();
        vm.enter_block(b).unwrap();
        let e = vm.enter_block(b).unwrap_err();
        assert_eq!(e.message, "recursion too deep (limit 2 nested block executions)");
        assert_eq!(vm.block_obj(b).unwrap().exec_count.get(), 3);
        vm.leave_block();
        vm.leave_block();
        assert_eq!(vm.depth(), 0);
    }
}
