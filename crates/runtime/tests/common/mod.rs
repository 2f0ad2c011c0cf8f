//! Shared helpers for the integration tests: run SOMA source on a fresh VM with captured I/O.
#![allow(dead_code)]

use soma_runtime::encode::assemble;
use soma_runtime::exec::run_module;
use soma_runtime::render::al_form;
use soma_runtime::vm::HostIo;
use soma_runtime::{SomaError, Vm};
use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;

/// Captured output lines and queued input lines.
#[derive(Clone, Default)]
pub struct Capture {
    pub out: Rc<RefCell<Vec<String>>>,
    pub input: Rc<RefCell<VecDeque<String>>>,
}

impl HostIo for Capture {
    fn write_line(&mut self, line: &str) {
        self.out.borrow_mut().push(line.to_string());
    }
    fn read_line(&mut self) -> Option<String> {
        self.input.borrow_mut().pop_front()
    }
}

pub struct Run {
    pub vm: Box<Vm>,
    pub result: Result<(), SomaError>,
    pub io: Capture,
}

impl Run {
    /// The AL rendered as the `.soma` test format does: `[a, b, c]`, bottom to top.
    pub fn al(&self) -> String {
        let items: Vec<String> = self.vm.al().iter().map(|&v| al_form(v)).collect();
        format!("[{}]", items.join(", "))
    }
    pub fn out(&self) -> Vec<String> {
        self.io.out.borrow().clone()
    }
    pub fn err(&self) -> &SomaError {
        self.result.as_ref().expect_err("expected an error")
    }
    /// Run more source on the same VM (top-level Register persists).
    pub fn more(&mut self, src: &str) -> Result<(), SomaError> {
        let id = self.vm.load_module(assemble(src).expect("assembles"));
        run_module(&mut self.vm, id)
    }
}

pub fn run_with_input(src: &str, input: &[&str]) -> Run {
    let mut vm = Vm::new();
    let io = Capture::default();
    io.input.borrow_mut().extend(input.iter().map(|s| s.to_string()));
    vm.set_io(Box::new(io.clone()));
    let id = vm.load_module(assemble(src).expect("assembles"));
    let result = run_module(&mut vm, id);
    Run { vm, result, io }
}

pub fn run(src: &str) -> Run {
    run_with_input(src, &[])
}

/// Run and expect success; returns the rendered AL.
pub fn al_of(src: &str) -> String {
    let r = run(src);
    if let Err(e) = &r.result {
        panic!("{src:?} failed: {e}");
    }
    r.al()
}
