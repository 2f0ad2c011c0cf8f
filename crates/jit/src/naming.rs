//! How compiled code is named: a Block's name in dumps and the perf map, its function's
//! symbol, and the perf map's lines (`/tmp/perf-PID.map`).

use soma_runtime::{Value, Vm};
use std::io::Write;

/// Cells of the Store searched for the path that names a Block in dumps and the perf map.
const NAMING_SEARCH_CELLS: usize = 4096;

/// How dumps and the perf map name a Block: a Store path holding it (a bounded search, made
/// only where names are printed) and its Code's source position, as `fib@fib.soma:3:1`; a
/// Block no path holds is `block@fib.soma:6:3`, the program `program@fib.soma`.
pub fn describe_block(vm: &Vm, block: Value) -> String {
    let Some(b) = vm.block_obj(block) else {
        return "?".into();
    };
    let Some(m) = vm.module(b.module) else {
        return "?".into();
    };
    let source = &m.module.source;
    let position = m
        .module
        .codes
        .get(b.code as usize)
        .and_then(|c| code_position(&c.name));
    let path = vm.graph_ref().store_path_of(block, NAMING_SEARCH_CELLS);
    let what = path.as_deref().unwrap_or(if position.is_some() { "block" } else { "program" });
    match (source.is_empty(), position) {
        (true, Some(pos)) => format!("{what}@{pos}"),
        (false, Some(pos)) => format!("{what}@{source}:{pos}"),
        (true, None) => what.to_string(),
        (false, None) => format!("{what}@{source}"),
    }
}

/// `LINE:COL` of a block Code from its name: `block@3:1` (Python's compiler), `<block 3:1>`
/// (the runtime's assembler); `None` for the program.
fn code_position(name: &str) -> Option<String> {
    if let Some((_, pos)) = name.split_once('@') {
        return Some(pos.to_string());
    }
    name.strip_prefix("<block ").and_then(|r| r.strip_suffix('>')).map(str::to_string)
}

pub(crate) fn sanitize(name: &str) -> String {
    name.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}

pub(crate) fn write_perf_map(addr: usize, size: usize, name: &str) {
    let path = format!("/tmp/perf-{}.map", std::process::id());
    if let Ok(mut f) = std::fs::OpenOptions::new().create(true).append(true).open(path) {
        let _ = writeln!(f, "{addr:x} {size:x} {name}");
    }
}
