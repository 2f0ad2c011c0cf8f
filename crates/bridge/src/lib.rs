//! `soma._native`: the only Rust that knows about Python.
use pyo3::prelude::*;

/// The extension module. Its surface grows with the native-state backend.
#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
