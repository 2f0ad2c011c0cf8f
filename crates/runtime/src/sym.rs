//! Interned child names (symbols).
//!
//! Every path component and child name is interned once into a [`Sym`] (a `u32`): when a
//! module is decoded (`Path::new`), when host code or a builtin defines a name, and when a
//! path given as strings is used (the slow, host-facing APIs). Children store and compare
//! symbols, so child lookup on the hot path is an integer compare (or an integer-keyed hash
//! probe), never a string compare.
//!
//! The interner is process-global (a symbol means the same name in every VM and thread; a
//! decoded module may be loaded anywhere) and never forgets a name: names come from program
//! text and host definitions, so the table is bounded by the code loaded, not by the data a
//! program processes. Interned strings are leaked (`&'static str`), which lets
//! [`Sym::as_str`] hand out a reference without holding the lock.

use std::cell::RefCell;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::rc::Rc;
use std::sync::{Mutex, OnceLock};

/// FNV-1a over 8-byte words: names are short identifiers from program text, hash flooding is
/// not a threat model here, and SipHash costs several times more per short name.
#[derive(Default)]
struct NameHasher(u64);

impl Hasher for NameHasher {
    fn write(&mut self, bytes: &[u8]) {
        const PRIME: u64 = 0x0000_0100_0000_01B3;
        let mut h = if self.0 == 0 { 0xCBF2_9CE4_8422_2325 } else { self.0 };
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            h = (h ^ u64::from_le_bytes(c.try_into().expect("8 bytes"))).wrapping_mul(PRIME);
        }
        for &b in chunks.remainder() {
            h = (h ^ b as u64).wrapping_mul(PRIME);
        }
        self.0 = h;
    }
    fn finish(&self) -> u64 {
        self.0 ^ (self.0 >> 29)
    }
}

type NameMap = HashMap<&'static str, Sym, BuildHasherDefault<NameHasher>>;

thread_local! {
    /// This thread's copy of the names it has looked up: host-facing string lookups hit here
    /// without taking the global lock (sound because the global table never forgets).
    static LOCAL: RefCell<NameMap> = RefCell::new(NameMap::default());
}

/// An interned name. Equal symbols are equal names.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
#[repr(transparent)]
pub struct Sym(pub u32);

#[derive(Default)]
struct Interner {
    ids: NameMap,
    names: Vec<&'static str>,
}

fn interner() -> &'static Mutex<Interner> {
    static INTERNER: OnceLock<Mutex<Interner>> = OnceLock::new();
    INTERNER.get_or_init(Default::default)
}

fn lock() -> std::sync::MutexGuard<'static, Interner> {
    // The table is only ever appended to; a panic while holding the lock cannot leave it
    // inconsistent, so a poisoned lock is still usable.
    interner().lock().unwrap_or_else(|p| p.into_inner())
}

impl Sym {
    /// The symbol of `name`, interning it if it is new.
    pub fn intern(name: &str) -> Sym {
        if let Some(s) = Sym::find_local(name) {
            return s;
        }
        let (s, leaked) = {
            let mut t = lock();
            match t.ids.get_key_value(name) {
                Some((&k, &s)) => (s, k),
                None => {
                    let s = Sym(u32::try_from(t.names.len()).expect("fewer than 2^32 distinct names"));
                    let leaked: &'static str = Box::leak(name.to_owned().into_boxed_str());
                    t.names.push(leaked);
                    t.ids.insert(leaked, s);
                    (s, leaked)
                }
            }
        };
        let _ = LOCAL.try_with(|l| l.borrow_mut().insert(leaked, s));
        s
    }

    fn find_local(name: &str) -> Option<Sym> {
        // During thread teardown the local copy may be gone: then use the global table.
        LOCAL.try_with(|l| l.borrow().get(name).copied()).ok().flatten()
    }

    /// The symbol of `name` if it was ever interned (a name never interned cannot be the name
    /// of any child, so lookups need not intern).
    pub fn find(name: &str) -> Option<Sym> {
        if let Some(s) = Sym::find_local(name) {
            return Some(s);
        }
        let found = lock().ids.get_key_value(name).map(|(&k, &s)| (k, s));
        let (k, s) = found?;
        let _ = LOCAL.try_with(|l| l.borrow_mut().insert(k, s));
        Some(s)
    }

    /// The name this symbol stands for.
    pub fn as_str(self) -> &'static str {
        lock().names[self.0 as usize]
    }
}

impl std::fmt::Display for Sym {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A path component usable as a child name: a [`Sym`] (decoded paths carry them, the fast
/// path) or a string (host-facing APIs; interned on use, see `sym.rs`).
pub trait Name {
    /// The symbol of this name, interning it if needed (for creating a child).
    fn sym(&self) -> Sym;
    /// The symbol if the name was ever interned; `None` means no child can have this name.
    fn find_sym(&self) -> Option<Sym>;
}

impl Name for Sym {
    #[inline]
    fn sym(&self) -> Sym {
        *self
    }
    #[inline]
    fn find_sym(&self) -> Option<Sym> {
        Some(*self)
    }
}

macro_rules! str_name {
    ($($t:ty),*) => {$(
        impl Name for $t {
            fn sym(&self) -> Sym {
                Sym::intern(AsRef::<str>::as_ref(self))
            }
            fn find_sym(&self) -> Option<Sym> {
                Sym::find(AsRef::<str>::as_ref(self))
            }
        }
    )*};
}
str_name!(str, &str, String, Box<str>, Rc<str>);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interning_is_idempotent_and_round_trips() {
        let a = Sym::intern("sym_test_alpha");
        let b = Sym::intern("sym_test_beta");
        assert_ne!(a, b);
        assert_eq!(Sym::intern("sym_test_alpha"), a);
        assert_eq!(a.as_str(), "sym_test_alpha");
        assert_eq!(Sym::find("sym_test_beta"), Some(b));
        assert_eq!(Sym::find("sym_test_never_interned_name"), None);
    }
}
