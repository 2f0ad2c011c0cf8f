//! End-to-end tests of the reference executor: assembled modules run through the helpers.

mod common;
use common::{al_of, run, run_with_input};
use soma_runtime::exec::run_module;
use soma_runtime::{ErrorClass, Vm};

/// The reference's multi-line message for a Store path never created.
fn undefined_store(path: &str) -> String {
    format!(
        "Undefined Store path: '{path}'\n  Path was never set. Did you mean to:\n    - Initialize it first: () !{path}\n    - Set a nested value: <value> !{path}.<child>\n    - Check a different path?\n  Hint: Auto-vivified intermediate paths can be read after writing to children.\n        Example: 42 !a.b.c creates 'a' and 'a.b' with Void, which can be read."
    )
}

/// The reference's multi-line message for a Register path never created (`_.` for the root).
fn undefined_register(path: &str) -> String {
    format!("Undefined Register path: '{path}'\n  Register paths must be written before reading.\n  Did you forget: <value> !{path}?")
}

const FIB: &str = "{ !_.n _.n _.n 2 >< { } { !_.m _.m 1 >- >fib _.m 2 >- >fib >+ } >choose >chain } !fib";

#[test]
fn literals_and_operand_order() {
    assert_eq!(al_of("1 (two) 3"), "[1, (two), 3]");
    assert_eq!(al_of("7 2 >-"), "[5]");
    assert_eq!(al_of("-7 2 >/ -7 2 >% 7 -2 >% 7 -2 >/"), "[-4, 1, -1, -4]");
    assert_eq!(al_of("1 2 >< 2 1 >< (a) (b) ><"), "[True, False, True]");
    assert_eq!(al_of("True False Nil Void"), "[True, False, Nil, Void]");
    assert_eq!(al_of("{ 1 } + _."), "[Block, BuiltinBlock, CellRef]");
}

#[test]
fn big_ints_match_python() {
    assert_eq!(al_of("100000000000000000000 3 >*"), "[300000000000000000000]");
    assert_eq!(al_of("140737488355327 1 >+ 1 >-"), "[140737488355327]");
    assert_eq!(
        al_of("-100000000000000000000 7 >/ -100000000000000000000 7 >%"),
        "[-14285714285714285715, 5]"
    );
    assert_eq!(al_of("99999999999999999999 100000000000000000000 ><"), "[True]");
}

#[test]
fn fib_recursion() {
    assert_eq!(al_of(&format!("{FIB}\n20 >fib")), "[6765]");
}

#[test]
fn chain_loop_with_block() {
    let src = "0 !acc 10000 !i\n\
               { acc i >+ !acc  i 1 >- !i  0 i >< >block Nil >choose } >chain\n\
               acc";
    assert_eq!(al_of(src), "[Nil, 50005000]");
    // A non-executable value given to chain is pushed back.
    assert_eq!(al_of("5 >chain"), "[5]");
    // Chaining builtins: `chain` runs a builtin directly.
    assert_eq!(al_of("1 2 + >chain"), "[3]");
}

#[test]
fn cell_ref_write_through_and_walks() {
    assert_eq!(al_of("42 !x  x. !r  7 !r  x"), "[7]");
    assert_eq!(al_of("42 !data.x  data. !ref  ref.x  99 !ref.y  data.y"), "[42, 99]");
    // `!p.` replaces without write-through and drops children.
    assert_eq!(al_of("1 !t  t. !a  5 !a.  t a"), "[1, 5]");
    assert_eq!(al_of("1 !a.b  2 !a.  a"), "[2]");
    let r = run("1 !a.b  2 !a.  a.b");
    assert_eq!(r.err().message, undefined_store("a.b"));
    // Void with `!p.` deletes.
    let r = run("1 !a  Void !a.  a");
    assert_eq!(r.err().message, undefined_store("a"));
    // Auto-vivified parents read as Void.
    assert_eq!(al_of("1 !a.b.c  a.b >isVoid"), "[True]");
}

#[test]
fn context_passing_through_register_root() {
    let src = "{ !_. 5 !_.v  _.w 1 >+ !_.w } !setv\n\
               10 !_.w  _. >setv  _.v _.w";
    assert_eq!(al_of(src), "[5, 11]");
    // Registers are fresh per block: a block cannot see its caller's register.
    let r = run("1 !_.x { _.x } >chain");
    assert_eq!(r.err().message, undefined_register("_.x"));
    assert_eq!((r.err().line, r.err().col), (1, 10));
    let r = run("_");
    assert_eq!(r.err().message, undefined_register("_."));
}

#[test]
fn top_level_register_persists_across_runs() {
    let mut r = run("3 !_.x");
    r.result.as_ref().unwrap();
    r.more("_.x 1 >+").unwrap();
    assert_eq!(r.al(), "[4]");
}

#[test]
fn errors_carry_positions_and_do_not_roll_back() {
    let r = run("1 !a\n  2 (x) >+");
    let e = r.err();
    assert_eq!(e.class, ErrorClass::Runtime);
    assert_eq!(e.message, "Type error in +: expected int, got int and str");
    assert_eq!((e.line, e.col), (2, 9));
    assert_eq!(r.al(), "[]", "operands are popped before the type check");
    assert_eq!(r.vm.read_store_path(&["a"]).and_then(|v| v.as_small_int()), Some(1));

    let cases: &[(&str, &str, (u32, u32))] = &[
        ("!a", "AL underflow: store requires value on AL", (1, 1)),
        ("!_.x.", "AL underflow: store requires value on AL", (1, 1)),
        ("!_.", "AL underflow: store requires value on AL", (1, 1)),
        ("!_", "AL underflow: store requires value on AL", (1, 1)),
        ("1 >+", "AL underflow: + requires 2 values", (1, 3)),
        ("5 !f >f", "Cannot execute int: only Blocks are executable", (1, 6)),
        ("Nil !f >f", "AL underflow: exec requires executable Block on AL, got NilSingleton", (1, 8)),
        ("1 0 >/", "Division by zero", (1, 5)),
        ("1 0 >%", "Modulo by zero", (1, 5)),
        ("1 (a) ><", "Type mismatch in <: cannot compare int and str", (1, 7)),
        ("Nil Nil ><", "Cannot compare type NilSingleton with <", (1, 9)),
        ("1 (a) >concat", "Type error in concat: expected string, got int and str", (1, 7)),
        ("(a) >toString", "Type error in to_string: expected int, got str", (1, 5)),
        ("1 >toInt", "Type error in to_int: expected string, got int", (1, 3)),
        (">block", ">block called at top-level (no current block)", (1, 1)),
        ("(boom) >debug.error", "ASSERT FAILED: boom", (1, 8)),
        ("42 >debug.error", "ASSERT FAILED: 42", (1, 4)),
        (">debug.error", "ASSERT FAILED: (no message provided)", (1, 1)),
        (">readLine", "read_line: EOF encountered", (1, 1)),
        ("5 >use", "use: expected string extension name, got int", (1, 3)),
        ("(python) >use", "Extension 'python' not found: No module named 'soma.extensions.python'", (1, 10)),
        ("1 >choose", "AL underflow: >choose requires 3 values", (1, 3)),
        (">chain", "AL underflow: >chain requires 1 value (block)", (1, 1)),
        ("{ 1\n  { (x) 2 >+ } >chain } >chain", "Type error in +: expected int, got str and int", (2, 11)),
    ];
    for (src, message, pos) in cases {
        let r = run(src);
        let e = r.err();
        assert_eq!(&e.message, message, "{src:?}");
        assert_eq!((e.line, e.col), *pos, "{src:?}");
        assert_eq!(e.to_string(), format!("{}:{}: {}", pos.0, pos.1, message));
    }
}

#[test]
fn undefined_paths_carry_the_reference_hints_and_positions() {
    for (src, message, pos) in [
        ("nope", undefined_store("nope"), (1, 1)),
        ("1 !a  a.b.c", undefined_store("a.b.c"), (1, 7)),
        ("  _.q.r", undefined_register("_.q.r"), (1, 3)),
        ("{ _ } >chain", undefined_register("_."), (1, 3)),
    ] {
        let r = run(src);
        let e = r.err();
        assert_eq!(e.message, message, "{src:?}");
        assert_eq!((e.line, e.col), pos, "{src:?}");
    }
}

#[test]
fn builtin_underflow_messages_are_worded_per_builtin() {
    let cases: &[(&str, &str)] = &[
        ("<", "AL underflow: < requires 2 values"),
        ("+", "AL underflow: + requires 2 values"),
        ("-", "AL underflow: - requires 2 values"),
        ("*", "AL underflow: * requires 2 values"),
        ("/", "AL underflow: / requires 2 values"),
        ("%", "AL underflow: % requires 2 values"),
        ("concat", "AL underflow: concat requires 2 values"),
        ("print", "AL underflow: print requires 1 value"),
        ("toString", "AL underflow: to_string requires 1 value"),
        ("toInt", "AL underflow: to_int requires 1 value"),
        ("isVoid", "AL underflow: IsVoid requires 1 value"),
        ("isNil", "AL underflow: IsNil requires 1 value"),
        ("debug.type", "AL underflow: debug.type requires 1 value"),
        ("debug.id", "AL underflow: debug.id requires 1 value"),
        ("choose", "AL underflow: >choose requires 3 values"),
        ("chain", "AL underflow: >chain requires 1 value (block)"),
        ("debug.chain", "AL underflow: >chain requires 1 value (block)"),
        ("debug.choose", "Choose requires [condition, true_block, false_block] on AL"),
        ("debug.graph.dump", "debug.graph.dump requires a value on AL"),
        ("debug.graph.draw", "debug.graph.draw requires a value on AL"),
        ("use", "AL underflow: use requires 1 value (extension name)"),
    ];
    for (word, message) in cases {
        let r = run(&format!(">{word}"));
        assert_eq!(&r.err().message, message, "{word}");
    }
}

#[test]
fn type_errors_name_the_reference_classes() {
    let cases: &[(&str, &str)] = &[
        ("True 1 >*", "Type error in *: expected int, got TrueSingleton and int"),
        ("Void Nil >+", "Type error in +: expected int, got VoidSingleton and NilSingleton"),
        ("{ } + >%", "Type error in %: expected int, got Block and BuiltinBlock"),
        ("_. 1 >-", "Type error in -: expected int, got CellRef and int"),
        ("True False ><", "Type mismatch in <: cannot compare TrueSingleton and FalseSingleton"),
        ("{ } { } ><", "Cannot compare type Block with <"),
        ("+ + ><", "Cannot compare type BuiltinBlock with <"),
        ("_. _. ><", "Cannot compare type CellRef with <"),
        ("(a) False >concat", "Type error in concat: expected string, got str and FalseSingleton"),
        ("Void >toString", "Type error in to_string: expected int, got VoidSingleton"),
        ("Nil >toInt", "Type error in to_int: expected string, got NilSingleton"),
        ("True !f >f", "Cannot execute TrueSingleton: only Blocks are executable"),
    ];
    for (src, message) in cases {
        let r = run(src);
        assert_eq!(&r.err().message, message, "{src:?}");
    }
}

#[test]
fn print_shows_a_block_by_its_statement_kinds() {
    let r = run("{ 1 (s) { } x x. !x !x. >x >{ } } >print { } >print print >debug.error");
    assert_eq!(
        r.out(),
        [
            "Block(body=[RunNode(IntNode), RunNode(StringNode), RunNode(BlockNode), \
             RunNode(ValuePath), RunNode(ReferencePath), RunNode(StoreNode), RunNode(StoreNode), \
             RunNode(ExecNode), RunNode(ExecNode)])",
            "Block(body=[])"
        ]
    );
    assert_eq!(r.err().message, "ASSERT FAILED: <builtin print>");
}

#[test]
fn vm_stays_usable_after_an_error() {
    let mut r = run("{ 1 2 >+ (x) >+ } >chain");
    assert!(r.result.is_err());
    assert_eq!(r.vm.depth(), 0, "frames unwound");
    r.more("2 3 >*").unwrap();
    assert_eq!(r.al(), "[6]");
}

#[test]
fn runaway_recursion_is_an_error_not_a_crash() {
    let r = run("{ >r } !r >r");
    let e = r.err();
    assert_eq!(e.message, "recursion too deep (limit 10000 nested block executions)");
    assert_eq!((e.line, e.col), (1, 3));
    assert_eq!(r.vm.depth(), 0);
    // Level k of `r` runs at depth 2k-1 and its `{ >r }` at 2k; with N levels the deepest
    // execution (the final `{ }`) is at depth 2N. So N = 5000 is exactly the limit.
    let src = |n: u32| format!("{n} !n {{ n 1 >- !n  0 n >< {{ >r }} {{ }} >choose >chain }} !r >r n");
    assert_eq!(al_of(&src(5000)), "[0]");
    let r = run(&src(5001));
    assert_eq!(r.err().message, "recursion too deep (limit 10000 nested block executions)");
}

#[test]
fn chain_recursion_through_native_helper_is_guarded_too() {
    // `>chain` reached through the helper (not the executor's loop) recurses natively; the
    // depth limit still applies.
    let mut vm = Vm::new();
    vm.set_max_depth(50);
    let id = vm.load_module(soma_runtime::encode::assemble("{ >r } !r").unwrap());
    run_module(&mut vm, id).unwrap();
    let r = vm.read_store_path(&["r"]).unwrap();
    let e = vm.exec_value(r).unwrap_err();
    assert_eq!(e.message, "recursion too deep (limit 50 nested block executions)");
    assert_eq!(vm.depth(), 0);
}

#[test]
fn print_renders_values() {
    let r = run("1 >print (text) >print True >print Nil >print Void >print { } >print + >print _. >print \
                 -123456789012345678901234567890 >print");
    r.result.as_ref().unwrap();
    assert_eq!(
        r.out(),
        ["1", "text", "True", "Nil", "Void", "Block(body=[])", "<builtin +>", "CellRef(...)", "-123456789012345678901234567890"]
    );
}

#[test]
fn string_and_predicate_builtins() {
    assert_eq!(al_of("(ab) (cd) >concat"), "[(abcd)]");
    assert_eq!(al_of("-42 >toString 123456789012345678901234567890 >toString"), "[(-42), (123456789012345678901234567890)]");
    assert_eq!(al_of("( 1_000 ) >toInt (x) >toInt"), "[1000, Nil]");
    assert_eq!(al_of("Void >isVoid Nil >isVoid Nil >isNil 0 >isNil"), "[True, False, True, False]");
    assert_eq!(
        al_of("1 >debug.type (s) >debug.type True >debug.type { } >debug.type + >debug.type _. >debug.type Nil >debug.type Void >debug.type"),
        "[(Int), (Str), (Bool), (Block), (BuiltinBlock), (CellRef), (Nil), (Void)]"
    );
    assert_eq!(al_of("1 (t) (f) >choose Nil (t) (f) >choose False 1 2 >choose 0 1 2 >choose"), "[(t), (f), 2, 1]");
    let r = run_with_input(">readLine >readLine", &["first", "second"]);
    assert_eq!(r.al(), "[(first), (second)]");
}

#[test]
fn block_identity_is_per_literal() {
    // `>block` pushes the running block; the same literal gives the same value each time.
    let r = run("{ >block } !b >b >b { } { }");
    r.result.as_ref().unwrap();
    let al = r.vm.al();
    assert_eq!(al[0], al[1]);
    assert_ne!(al[2], al[3]);
}

#[test]
fn python_compiled_module_runs() {
    // Compiled by python/soma (compiler.py + code.py) from a fib program; the decoder and
    // executor must accept the Python writer's output.
    let bytes = include_bytes!("fixtures/fib_al.bc");
    let mut vm = Vm::new();
    let cap = common::Capture::default();
    vm.set_io(Box::new(cap.clone()));
    let id = vm.load_module_bytes(bytes).unwrap();
    run_module(&mut vm, id).unwrap();
    assert_eq!(vm.al().len(), 1);
    assert_eq!(vm.al()[0].as_small_int(), Some(6765));
    assert_eq!(cap.out.borrow().as_slice(), ["done"]);
}

#[test]
fn python_compiled_stdlib_loads_and_works() {
    let bytes = include_bytes!("../../../benches/bytecode/stdlib.bc");
    let mut vm = Vm::new();
    let id = vm.load_module_bytes(bytes).unwrap();
    run_module(&mut vm, id).unwrap();
    assert!(vm.al().is_empty(), "stdlib leaves the AL empty");
    let mut r = common::Run { vm, result: Ok(()), io: common::Capture::default() };
    r.more("3 4 >swap 5 >dup").unwrap();
    assert_eq!(r.al(), "[4, 3, 5, 5]");
}

#[test]
fn python_writer_output_re_encodes_byte_for_byte() {
    // Both writers emit the smallest form, so decode + encode is the identity on the bytes.
    for bytes in [&include_bytes!("../../../benches/bytecode/stdlib.bc")[..], &include_bytes!("fixtures/fib_al.bc")[..]] {
        let m = soma_runtime::decode::decode_module(bytes).unwrap();
        assert_eq!(soma_runtime::encode::encode_module(&m), bytes);
    }
}

#[test]
fn store_inline_cache_follows_structural_changes() {
    // The same instructions (inside `get` / `put`) run before and after changes that reroute
    // or remove what `a.x` resolves to; the epoch guard must notice every one.
    let src = "{ a.x } !get  { !a.x } !put\n\
               1 !a.x  2 !b.x  >get\n\
               b. !a  >get\n\
               5 >put  b.x\n\
               9 !a.  c. !a.  7 >put  c.x >get";
    assert_eq!(al_of(src), "[1, 2, 5, 7, 7]");
    let r = run("{ a.x } !get  1 !a.x >get  Void !a.x. >get");
    assert_eq!(r.al(), "[1]");
    assert_eq!(r.err().message, undefined_store("a.x"));
    assert_eq!((r.err().line, r.err().col), (1, 3));
    // A write-through target changing under a cached cell.
    assert_eq!(al_of("{ !r } !put  1 !x 2 !y  x. !r  5 >put  y. !r  6 >put  x y"), "[5, 6]");
    // Loops hit the cache on every iteration and still see each other's writes.
    assert_eq!(
        al_of("0 !n { n 1 >+ !n  n 1000 >< >block Nil >choose } >chain n"),
        "[Nil, 1000]"
    );
}
