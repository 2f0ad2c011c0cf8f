//! Run a serialized SOMA module with the native reference executor.
//!
//! `cargo run -p soma-runtime --example run_bc -- [--max-depth N] FILE.bc [FILE.bc ...]`
//!
//! Modules run in order on one VM (e.g. the compiled stdlib, then a program). Prints the
//! program's output, then the AL in the `.soma` test format, or the error as the CLI does
//! (`Class: LINE:COL: message`) with exit status 1.

use soma_runtime::exec::run_module;
use soma_runtime::render::al_form;
use soma_runtime::Vm;

fn main() {
    let mut vm = Vm::new();
    let mut args = std::env::args().skip(1).peekable();
    if args.peek().map(String::as_str) == Some("--max-depth") {
        args.next();
        let n = args.next().and_then(|n| n.parse().ok()).expect("--max-depth N");
        vm.set_max_depth(n);
    }
    for path in args {
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        let result = vm
            .load_module_bytes(&bytes)
            .and_then(|id| run_module(&mut vm, id));
        if let Err(e) = result {
            eprintln!("{}: {e}", e.class.name());
            std::process::exit(1);
        }
    }
    let items: Vec<String> = vm.al().iter().map(|&v| al_form(v)).collect();
    println!("[{}]", items.join(", "));
}
