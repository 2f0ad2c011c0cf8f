//! The narrated and introspecting `debug.*` builtins: `debug.chain`, `debug.choose`,
//! `debug.graph.dump`, `debug.graph.draw`, `debug.al.dump`. Their output matches the
//! pure-Python tier (python/soma/builtins.py) line for line.

use crate::cell::CellPtr;
use crate::error::{msg, RtResult};
use crate::render::al_form;
use crate::value::{Kind, Value};
use crate::vm::Vm;
use std::collections::HashMap;

/// The class names the narrated words print for a value (Python's class names in the
/// reference: `TrueSingleton`, `int`, `str`, ...).
fn python_kind(v: Value) -> String {
    v.class_name().to_string()
}

/// A non-reference value as the graph words show it.
fn graph_leaf(v: Value) -> String {
    match v.kind() {
        Kind::Block => "<Block>".into(),
        Kind::Builtin => format!("<Builtin:{}>", crate::render::builtin_name(v)),
        Kind::Int | Kind::BigInt | Kind::Str | Kind::True | Kind::False | Kind::Nil | Kind::Void => {
            al_form(v)
        }
        _ => format!("<{}>", v.type_name()),
    }
}

/// Children sorted by name (the graph words sort them, as Python's `sorted(items())`).
fn sorted_children(cell: CellPtr) -> Vec<(String, CellPtr)> {
    let mut kids = Vec::with_capacity(cell.child_count());
    cell.for_each_child(|k, c| kids.push((k.to_string(), c)));
    kids.sort_by(|a, b| a.0.cmp(&b.0));
    kids
}

impl Vm {
    pub(crate) fn debug_al_dump(&mut self) {
        let items: Vec<String> = self
            .al
            .iter()
            .map(|&v| match v.as_cell() {
                Some(c) => format!("CellRef({})", c.as_raw().as_ptr() as usize),
                None => al_form(v),
            })
            .collect();
        let line = format!("DEBUG AL [{} items]: [{}]", items.len(), items.join(", "));
        self.io.write_line(&line);
    }

    /// `chain` that narrates each step; stops after 1000 steps as a loop guard.
    pub(crate) fn debug_chain(&mut self) -> RtResult<()> {
        self.need("debug.chain", 1)?;
        let mut value = self.al.pop().expect("checked");
        let mut step = 0;
        while value.is_executable() {
            step += 1;
            self.io.write_line("");
            self.io.write_line(&format!("[DEBUG CHAIN] Iteration {step}"));
            self.io.write_line(&format!("  AL before: {} items", self.al.len()));
            self.io.write_line("  \u{2192} Executing Block");
            if step >= 1000 {
                self.io.write_line("");
                self.io
                    .write_line("[DEBUG CHAIN] \u{26a0}\u{fe0f}  WARNING: Reached 1000 iterations!");
                self.io.write_line("  Possible infinite loop detected - stopping chain");
                self.io.write_line(&format!("  Last AL size: {} items", self.al.len()));
                return Ok(());
            }
            self.exec_value(value)?;
            self.io.write_line(&format!("  AL after: {} items", self.al.len()));
            match self.chain_next() {
                Some(next) => value = next,
                None => {
                    self.io.write_line("  \u{2192} Chain terminating: no more blocks on AL");
                    return Ok(());
                }
            }
        }
        if value.is_nil() {
            self.io.write_line("");
            self.io.write_line("[DEBUG CHAIN] \u{2192} Nil encountered, stopping");
        } else {
            self.al.push(value);
        }
        Ok(())
    }

    /// `choose` that narrates the branch it takes (and, unlike `choose`, treats 0 and the
    /// empty string as false, as the reference's narrated variant does).
    pub(crate) fn debug_choose(&mut self) -> RtResult<()> {
        self.need("debug.choose", 3)?;
        let before = self.al.len();
        let if_false = self.al.pop().expect("checked");
        let if_true = self.al.pop().expect("checked");
        let cond = self.al.pop().expect("checked");
        self.io.write_line("");
        self.io.write_line("[DEBUG CHOOSE]");
        self.io.write_line(&format!("  Condition: {}", python_kind(cond)));
        self.io.write_line(&format!("  AL before: {before} items"));
        let (take_true, why) = match cond.kind() {
            Kind::True => (true, String::new()),
            Kind::False | Kind::Void | Kind::Nil => (false, String::new()),
            Kind::Int | Kind::BigInt => {
                if cond.as_small_int() == Some(0) {
                    (false, " (zero)".to_string())
                } else {
                    let n = crate::int::to_decimal(cond).expect("an Int");
                    (true, format!(" (non-zero int: {n})"))
                }
            }
            Kind::Str => {
                if cond.as_str() == Some("") {
                    (false, " (empty string)".to_string())
                } else {
                    (true, " (non-empty string)".to_string())
                }
            }
            _ => (true, " (truthy value)".to_string()),
        };
        let branch = if take_true { "TRUE" } else { "FALSE" };
        self.io
            .write_line(&format!("  \u{2192} Taking {branch} branch{why}"));
        self.al.push(if take_true { if_true } else { if_false });
        self.io.write_line(&format!("  AL after: {} items", self.al.len()));
        Ok(())
    }

    /// Print the cell structure reachable from a CellRef, numbering cells, marking cycles.
    pub(crate) fn debug_graph_dump(&mut self) -> RtResult<()> {
        self.need("debug.graph.dump", 1)?;
        let v = self.al.pop().expect("checked");
        let mut seen = HashMap::new();
        let text = self.dump_value(v, 0, &mut seen)?;
        self.io.write_line(&text);
        Ok(())
    }

    fn dump_value(&self, v: Value, indent: usize, seen: &mut HashMap<CellPtr, usize>) -> RtResult<String> {
        let Some(cell) = v.as_cell() else {
            return Ok(graph_leaf(v));
        };
        if crate::stack::stack_is_low() {
            return Err(msg::recursion(self.max_depth));
        }
        if let Some(n) = seen.get(&cell) {
            return Ok(format!("#{n} (cycle)"));
        }
        let number = seen.len();
        seen.insert(cell, number);
        if cell.child_count() == 0 {
            let inner = self.dump_value(cell.value(), indent, seen)?;
            return Ok(format!("#{number} {{ value: {inner} }}"));
        }
        let pad = "  ".repeat(indent);
        let mut lines = vec![format!("#{number} {{")];
        for (name, child) in sorted_children(cell) {
            let shown = self.dump_value(child.value(), indent + 1, seen)?;
            lines.push(format!("{pad}  {name}: {shown}"));
        }
        lines.push(format!("{pad}}}"));
        Ok(lines.join("\n"))
    }

    /// Print the cell structure reachable from a CellRef as a tree with box-drawing lines.
    pub(crate) fn debug_graph_draw(&mut self) -> RtResult<()> {
        self.need("debug.graph.draw", 1)?;
        let v = self.al.pop().expect("checked");
        let mut seen = HashMap::new();
        let mut out = Vec::new();
        self.draw_value(v, "", "", &mut seen, &mut out)?;
        for line in out {
            self.io.write_line(&line);
        }
        Ok(())
    }

    fn draw_value(
        &self,
        v: Value,
        prefix: &str,
        connector: &str,
        seen: &mut HashMap<CellPtr, usize>,
        out: &mut Vec<String>,
    ) -> RtResult<()> {
        const LAST: &str = "\u{2514}\u{2500}\u{2500} ";
        const MID: &str = "\u{251c}\u{2500}\u{2500} ";
        const BAR: &str = "\u{2502}   ";
        let Some(cell) = v.as_cell() else {
            out.push(format!("{prefix}{connector}{}", graph_leaf(v)));
            return Ok(());
        };
        if crate::stack::stack_is_low() {
            return Err(msg::recursion(self.max_depth));
        }
        if let Some(n) = seen.get(&cell) {
            out.push(format!("{prefix}{connector}#{n} (cycle)"));
            return Ok(());
        }
        let number = seen.len();
        seen.insert(cell, number);
        out.push(format!("{prefix}{connector}#{number}"));
        let inner = format!(
            "{prefix}{}",
            if connector.is_empty() {
                ""
            } else if connector.starts_with('\u{2514}') {
                "    "
            } else {
                BAR
            }
        );
        let children = sorted_children(cell);
        let count = children.len();
        for (i, (name, child)) in children.into_iter().enumerate() {
            let last = i + 1 == count;
            let branch = if last { LAST } else { MID };
            let cv = child.value();
            match cv.as_cell() {
                Some(target) if seen.contains_key(&target) => {
                    out.push(format!("{inner}{branch}{name}: #{} (cycle)", seen[&target]));
                }
                Some(_) => {
                    out.push(format!("{inner}{branch}{name}:"));
                    let nested = format!("{inner}{}", if last { "    " } else { BAR });
                    self.draw_value(cv, &nested, LAST, seen, out)?;
                }
                None => out.push(format!("{inner}{branch}{name}: {}", graph_leaf(cv))),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::encode::assemble;
    use crate::exec::run_module;
    use crate::vm::{HostIo, Vm};
    use std::cell::RefCell;
    use std::rc::Rc;

    #[derive(Clone, Default)]
    struct Out(Rc<RefCell<Vec<String>>>);
    impl HostIo for Out {
        fn write_line(&mut self, line: &str) {
            self.0.borrow_mut().push(line.to_string());
        }
        fn read_line(&mut self) -> Option<String> {
            None
        }
    }

    fn output(src: &str) -> (Vec<String>, String) {
        let mut vm = Vm::new();
        let out = Out::default();
        vm.set_io(Box::new(out.clone()));
        let id = vm.load_module(assemble(src).unwrap());
        run_module(&mut vm, id).unwrap();
        let al: Vec<String> = vm.al().iter().map(|&v| crate::render::al_form(v)).collect();
        let lines = out.0.borrow().clone();
        (lines, al.join(", "))
    }

    #[test]
    fn graph_dump_numbers_cells_sorts_children_and_marks_cycles() {
        let (lines, _) = output("1 !g.b  (s) !g.a  g. !g.self  { } !g.c.blk  g. >debug.graph.dump");
        assert_eq!(
            lines.join("\n"),
            "#0 {\n  a: (s)\n  b: 1\n  c: Void\n  self: #0 (cycle)\n}"
        );
        let (lines, _) = output("5 !x  x. !r  r. >debug.graph.dump");
        assert_eq!(lines, ["#0 { value: #1 { value: 5 } }"]);
        let (lines, _) = output("7 >debug.graph.dump");
        assert_eq!(lines, ["7"]);
    }

    #[test]
    fn graph_draw_uses_box_drawing_lines() {
        let (lines, _) = output("1 !t.a  t.a. !t.b.x  t. !t.b.up  2 !t.c  t. >debug.graph.draw");
        assert_eq!(
            lines,
            [
                "#0",
                "\u{251c}\u{2500}\u{2500} a: 1",
                "\u{251c}\u{2500}\u{2500} b: Void",
                "\u{2514}\u{2500}\u{2500} c: 2",
            ]
        );
        let (lines, _) = output("1 !n.v  n. !top.child  top.child. !top.again  top. >debug.graph.draw");
        assert_eq!(
            lines,
            [
                "#0",
                "\u{251c}\u{2500}\u{2500} again:",
                "\u{2502}   \u{2514}\u{2500}\u{2500} #1",
                "\u{2514}\u{2500}\u{2500} child:",
                "    \u{2514}\u{2500}\u{2500} #2",
                "        \u{2514}\u{2500}\u{2500} v: 1",
            ]
        );
    }

    #[test]
    fn narrated_choose_and_chain() {
        let (lines, al) = output("0 (t) (f) >debug.choose");
        assert_eq!(
            lines,
            ["", "[DEBUG CHOOSE]", "  Condition: int", "  AL before: 3 items", "  \u{2192} Taking FALSE branch (zero)", "  AL after: 1 items"]
        );
        assert_eq!(al, "(f)");
        let (lines, al) = output("Nil { 1 } >debug.chain");
        assert_eq!(
            lines,
            [
                "",
                "[DEBUG CHAIN] Iteration 1",
                "  AL before: 1 items",
                "  \u{2192} Executing Block",
                "  AL after: 2 items",
                "  \u{2192} Chain terminating: no more blocks on AL",
            ]
        );
        assert_eq!(al, "Nil, 1");
        let (lines, al) = output("Nil >debug.chain 3 >debug.chain");
        assert_eq!(lines, ["", "[DEBUG CHAIN] \u{2192} Nil encountered, stopping"]);
        assert_eq!(al, "3");
    }

    #[test]
    fn al_dump_shows_cell_identity() {
        let (lines, _) = output("1 (a) x. >debug.al.dump");
        assert!(lines[0].starts_with("DEBUG AL [3 items]: [1, (a), CellRef("), "{}", lines[0]);
    }
}
