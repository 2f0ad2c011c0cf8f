"""Differential testing: random SOMA programs run on several VMs must agree.

The generator is grammar-aware: it builds programs statement by statement from
the language's forms (literals, value and reference paths in the Store and the
Register, stores, `!path.` replace/delete, execs of builtins, block literals,
executed literals, context passing, bounded `>chain` loops), and with a small
probability it damages the text (a dropped brace, a bad escape, a stray
modifier) so that lex and parse errors are compared too.

Every program terminates: loops are a counting `>chain` template with a literal
bound or a never-ending `>chain` (plain, or doubling a string), unbounded
recursion meets the depth limit, and every run has small resource limits: a
step budget (STEP_BUDGET block executions; LONG_STEP_BUDGET for the few programs
that name it, built around a long hot loop) and a memory limit (MEMORY_BUDGET
bytes), so limits trip inside compiled loops, inlined bodies and helpers.
Steps are counted identically by every tier, so a step-limit outcome is
compared in full. The pure-Python tier cannot see its heap (it checks each big
value on its own, docs/semantics.md), so it may stop a memory-hungry program
an iteration later than the native tiers: for a memory-limit error only the
class and message are compared.

An outcome is (AL rendering, printed lines, error class, message, line, col).
On a divergence the program is minimized (statements removed while the
divergence persists) before it is reported.

    python -m soma.difftest --count 20000 --seed 1     # a long run on every tier
"""

import argparse
import random
import re
import sys

from .errors import SomaError
from .values import render_al

# Builtins a random program may execute, with how many AL values they need.
_BUILTINS = [("+", 2), ("-", 2), ("*", 2), ("/", 2), ("%", 2), ("<", 2),
             ("concat", 2), ("toString", 1), ("toInt", 1), ("isVoid", 1),
             ("isNil", 1), ("choose", 3), ("print", 1), ("debug.type", 1)]
_STORE_NAMES = ["a", "b", "c", "a.b", "a.c", "b.x.y", "r", "r.k", "f"]
_REG_NAMES = ["_", "_.x", "_.y", "_.x.z", "_.r", "_.r.k"]
_INTS = [0, 1, 2, 3, -1, -7, 10, 255, 9223372036854775807, -9223372036854775808,
         2 ** 64, -(2 ** 70), 10 ** 20]
_STRS = ["", "a", "hi there", "42", " -5 ", "x)y", "\u00e9\u4e2d", "007"]

# The resource limits of every difftest run (see the module docstring).
STEP_BUDGET = 400
MEMORY_BUDGET = 256 << 10

# A few programs run a long hot loop with a bigger step budget, so that polls fall due inside
# compiled code without a limit near (compiled code takes those a few entries early, see
# docs/jit.md, "Poll regions"). Such a program says so itself: it starts by storing its
# budget in `difftest.steps` (a statement like any other, so a minimized program keeps it,
# or drops it and runs on the default budget).
LONG_STEP_BUDGET = 12_000
LONG_RUN_SHARE = 0.05
# Long runs get room enough that only the step budget stops them: what the memory limit does
# is compared on the short runs. (Over 12,000 steps a loop that keeps CellRefs to Register
# cells holds more heap in the executor than in compiled code, whose Registers are virtual,
# so the native executor alone may reach a small limit.)
LONG_MEMORY_BUDGET = 64 << 20
_LONG_RUN = re.compile(r"(?:^| )(\d+) !difftest\.steps(?: |$)")


def step_budget(text):
    """The step budget a program runs with: STEP_BUDGET unless it names its own."""
    m = _LONG_RUN.search(text)
    return int(m.group(1)) if m else STEP_BUDGET


class _Scope:
    """What the generator believes about the AL and the defined paths at a point.

    `stack` holds type tags (int, str, bool, nil, void, ref, block, any) for
    the values a statement may consume; `store`/`reg` map defined paths to the
    tag of their value. Beliefs are only a bias: 10% of statements ignore them.
    """

    def __init__(self, store, reg, stack):
        self.store = store
        self.reg = reg
        self.stack = stack


class Generator:
    def __init__(self, seed):
        self.rnd = random.Random(seed)

    # -- pieces ---------------------------------------------------------------

    def int_literal(self):
        if self.rnd.random() < 0.7:
            return str(self.rnd.randrange(-20, 50))
        return str(self.rnd.choice(_INTS))

    def str_literal(self):
        text = self.rnd.choice(_STRS)
        return "(" + text.replace(")", "\\29\\") + ")"

    def literal(self, scope):
        r = self.rnd.random()
        if r < 0.55:
            scope.stack.append("int")
            return self.int_literal()
        if r < 0.8:
            scope.stack.append("str")
            return self.str_literal()
        name = self.rnd.choice(["True", "False", "Nil", "Void"])
        scope.stack.append({"True": "bool", "False": "bool", "Nil": "nil", "Void": "void"}[name])
        return name

    def _defined(self, scope):
        known = [(p, t) for p, t in scope.store.items()] + [(p, t) for p, t in scope.reg.items()]
        return known

    def statement(self, scope, depth):
        rnd = self.rnd
        if rnd.random() < 0.1:
            return self.wild(scope, depth)
        st = scope.stack
        choices = ["literal", "literal", "store", "read", "ref", "arith", "arith", "compare",
                   "string", "predicate", "choose", "print", "exec_block", "context", "loop",
                   "delete", "recursion", "record", "dispatch"]
        kind = rnd.choice(choices)
        if kind == "literal":
            return self.literal(scope)
        if kind == "store" and st:
            target = rnd.choice(_STORE_NAMES + _REG_NAMES)
            tag = st.pop()
            (scope.reg if target.startswith("_") else scope.store)[target] = tag
            return "!" + target
        if kind == "delete" and st:
            st.pop()
            return "!" + rnd.choice(_STORE_NAMES + _REG_NAMES) + "."
        if kind == "read":
            known = self._defined(scope)
            if known:
                path, tag = rnd.choice(known)
                st.append(tag)
                return path
        if kind == "ref":
            st.append("ref")
            return rnd.choice(_STORE_NAMES + _REG_NAMES) + "."
        if kind == "arith":
            if len(st) >= 2 and st[-1] == "int" and st[-2] == "int":
                st.pop()
                op = rnd.choice(["+", "-", "*", "*", "/", "%"])
                return ">" + op
            st.append("int")
            return self.int_literal()
        if kind == "compare" and len(st) >= 2 and st[-1] == st[-2] and st[-1] in ("int", "str"):
            st.pop()
            st[-1] = "bool"
            return "><"
        if kind == "string":
            if len(st) >= 2 and st[-1] == "str" and st[-2] == "str":
                st.pop()
                return ">concat"
            if st and st[-1] == "int":
                st[-1] = "str"
                return ">toString"
            if st and st[-1] == "str":
                st[-1] = "any"
                return ">toInt"
        if kind == "predicate" and st:
            st[-1] = "bool"
            return rnd.choice([">isVoid", ">isNil"])
        if kind == "choose" and len(st) >= 3:
            del st[-3:]
            st.append("any")
            return ">choose"
        if kind == "print" and st:
            st.pop()
            return ">print"
        if kind == "exec_block" and depth < 3:
            # `>{...}` shares the AL; its Register is fresh.
            inner = _Scope(scope.store, {}, st)
            return ">{ " + self.body(inner, depth + 1, rnd.randrange(1, 5)) + " }"
        if kind == "context" and depth < 3:
            # `_. >{ !_. ... }`: the executed block adopts this Register.
            inner = _Scope(scope.store, scope.reg, st)
            return "_. >{ !_. " + self.body(inner, depth + 1, rnd.randrange(1, 4)) + " }"
        if kind == "recursion" and depth < 2:
            return self.recursion(scope)
        if kind == "record":
            return self.record(scope)
        if kind == "dispatch":
            return self.dispatch(scope)
        if kind == "loop" and depth < 2:
            r = rnd.random()
            if r < 0.12:
                return self.endless_loop(scope, depth)
            if r < 0.45:
                return self.hot_loop(scope)
            return self.loop(scope, depth)
        return self.literal(scope)

    def hot_loop(self, scope, rounds=None):
        """A loop of the shape the optimizing tier speculates on (Store cells, arithmetic,
        compares, no calls), with what breaks its assumptions mid-loop: small Ints that
        overflow into BigInts, an Int replaced by a Str, a zero divisor, `+` or `isNil`
        rebound, two paths sharing a cell through a CellRef, a Block run by `chain` that writes a cell the
        loop holds (checked again after the call) and in round k makes it a Str, a path
        holding a CellRef the loop replaces every round (plain stores) that in round k gets
        a value that is no CellRef or is looked up through; and long enough that the step
        budget may stop it inside compiled code.

        The runs have no stdlib, so the loop brings its own `ifelse`, `not`, `and` and `or`
        (`hif`, `hnot`, `hand`, `hor`: the stdlib's definitions on the `choose` builtin), and
        "in round k" is "from round k on" (`hi k ><` is the only comparison there is)."""
        rnd = self.rnd
        rounds = rounds or rnd.choice([3, 20, 150, 390, 2000])
        # The round where something breaks: mostly early, since the step budget (400 Block
        # executions, several a round) stops most loops within about a hundred rounds.
        k = rnd.randrange(0, min(rounds, 60) + 1) if rnd.random() < 0.7 else rnd.randrange(0, rounds + 1)
        start = rnd.choice(["0", "1", "-7", "140737488355300", "-140737488355300",
                            "70368744177664", "1180591620717411303424"])
        # The counter's start: mostly 0; past the bound (the loop's entry guard of its
        # induction range fails, `induction.rs`), or at the top of the small Int range (the
        # first round's step makes a BigInt, in the executor after that guard's exit).
        hi_start = rnd.choice(["0", "0", "0", "0", str(rounds + 2), "140737488355327"])
        pieces = []
        for _ in range(rnd.randrange(1, 4)):
            kind = rnd.choice(["add", "add", "mul", "div", "kind", "rebind", "alias", "cmp",
                               "call", "call", "cellref", "cellref", "truth", "nil", "parity"])
            if kind == "add":
                pieces.append(rnd.choice(["ha hi >+ !ha", "ha hb >- !ha", "hb ha >+ !hb"]))
            elif kind == "mul":
                # A product by a small factor, alone or with a constant added right after
                # (one overflow check of the sum when optimized; it leaves at the product).
                pieces.append(rnd.choice(["ha %d >* !ha" % rnd.choice([2, 3, -5]),
                                          "ha %d >* %d >+ !ha" % (rnd.choice([3, -5]), rnd.choice([1, -7]))]))
            elif kind == "div":
                pieces.append("ha hi %d >- >%s !hb" % (k, rnd.choice(["/", "%"])))
            elif kind == "parity":
                # `x % 2 == 0` as the stdlib spells `==` (two `<`, `not`, `and`): one test of
                # the remainder's mask, which the exits also read (`cold.rs`, a mask only
                # tested on the hot path); the remainder of a Str or BigInt leaves there.
                pieces.append("ha 2 >% !_.m  _.m 0 >< >hnot  0 _.m >< >hnot >hand { hb 1 >+ } { hb } >hif !hb")
            elif kind == "kind":
                pieces.append("hi %d >< {ha} {(s)} >hif !ha" % k)
            elif kind == "rebind":
                pieces.append("hi %d >< {hplus} {{ >hplus }} >hif !+" % k)
            elif kind == "alias":
                pieces.append("hr.v 1 >+ !hr.v  ht.v !hb")
            elif kind == "call":
                # Blocks run by `chain` are calls (small ones executed directly are inlined):
                # one writes a cell the loop holds, one writes nothing.
                pieces.append(rnd.choice(["hinc >chain !_.junk", "hnop >chain !_.junk",
                                          "hinc >chain !_.junk hinc >chain !_.junk",
                                          "hbad >chain !_.junk"]))
            elif kind == "cellref":
                pieces.append(rnd.choice([
                    "hi hs >hmk !hs",
                    "hi %d >< { hi 2 >%% 1 >< { ha. } { hb. } >hif } { 7 } >hif !hs" % k,
                    "hi %d >< { } { hpeek >chain !_.junk } >hif  hi hs >hmk !hs" % k,
                    "hi 2 >% 1 >< { ha. } { hb. } >hif !hs"]))
            elif kind == "truth":
                # `not`, `and`, `or` (the stdlib's, on `choose`) of compares: of the same two
                # Ints either way round (one compare when optimized), or of two pairs.
                pieces.append(rnd.choice([
                    "ha hb >< hb ha >< >hor >hnot !hc",
                    "ha hb >< >hnot hb ha >< >hand { ha } { hb } >hif !hb",
                    "hb ha >< ha hb >< hb ha >< >hnot >hand >hor !hc",
                    "ha hi >< hb ha >< >hor { 1 } { 2 } >hif !hc",
                    "hc { hi 3 >< } { ha hb >< } >hif >hnot !hc"]))
            elif kind == "nil":
                # `isNil` and `isVoid` (compiled inline) on a CellRef, Nil, a Bool or a cell
                # that may hold Void; from round k, `isNil` rebound to a Block that negates it.
                pieces.append(rnd.choice([
                    "hs >isNil { 1 } { 2 } >hif !hc",
                    "hi %d >< { Nil } { hs } >hif >isNil { ha } { hb } >hif !hc" % k,
                    "hc >isVoid >hnot !hc",
                    "hi %d >< { hisn } { { >hisn >hnot } } >hif !isNil  hs >isNil !hc" % k]))
            else:
                pieces.append("ha hb >< !hc")
        for name in ("hi", "ha", "hb", "hc", "ht.v", "hr", "hr.v", "hinc", "hnop", "hbad", "hs",
                     "hmk", "hpeek", "hif", "hnot", "hand", "hor", "hisn", "hl"):
            scope.store[name] = "any"
        scope.stack.append("nil")
        return ("{ >choose !_.go >_.go } !hif  { !_.x _.x False True >choose } !hnot "
                "{ !_.r !_.l _.l _.r False >choose } !hand  { !_.r !_.l _.l True _.r >choose } !hor "
                "%s !hi %s !ha 3 !hb False !hc 0 !ht.v ht. !hr "
                "+ !hplus isNil !hisn { hb 1 >+ !hb Nil } !hinc { Nil } !hnop "
                "{ hi %d >< { hb 1 >+ } { (s) } >hif !hb Nil } !hbad "
                "{ !_.c.n !_.c.v  _.c. } !hmk  0 Nil >hmk !hs  { hs.v !_.junk Nil } !hpeek "
                "{ %s  hi 1 >+ !hi  hi %d >< >block Nil >choose } %s%s"
                % (hi_start, start, k, "  ".join(pieces), rounds,
                   # The loop's Block run by `chain` from its first round, or first as an
                   # ordinary Block (once, or enough times that the optimizing tier's
                   # chained-only code leaves at its entry until it is recompiled), or run
                   # by `chain` again after it ended, from past its bound (its entry guard
                   # leaves until the recompile keeps the overflow checks instead).
                   rnd.choice([">chain", ">chain", "!hl >hl >chain",
                               "!hl >hl >drop >hl >drop >hl >drop >hl >drop >hl >drop >hl >chain",
                               "!hl >hl >chain !_.j  " + "  ".join(["hi 1 >+ !hi >hl >chain !_.j"] * 5) + "  Nil"]),
                   # A compiled Block that calls a writer twice, run twice: the second
                   # call's code must not trust a validation it made before the first.
                   rnd.choice(["", " { hinc >chain !_.j hinc >chain !_.j } !hz >hz >hz"])))

    def recursion(self, scope):
        """A Block that calls itself, of the shape the optimizing tier calls directly (its
        arguments and result outside the AL: docs/jit.md, "Direct self-calls"), with what takes
        a call off that path: a base case that leaves nothing, or two values; a result that
        overflows into a BigInt deep inside, or is a Str; recursion past the depth limit or the
        step budget; the Block rebound mid-recursion by a Block it is given (unknown to the
        compiler), or by itself (then it is not called directly at all)."""
        rnd = self.rnd
        base = rnd.choice(["_.n", "0", "1", "(s)", "", "5 6", "140737488355000", "_.n _.n"])
        combine = rnd.choice(["", "1 >+", "_.n >+", "100 >+", "3 >*", "!_.r _.r _.r >+",
                              "!_.junk 7", ">+"])
        shape = rnd.random()
        n = rnd.choice([0, 1, 2, 3, 8, 15, 60, 250])
        if shape < 0.4:
            arm = "_.n 1 >- >rf " + combine
            params = "!_.n"
            call = "%d >rf" % n
        elif shape < 0.6:
            # fib's shape: two calls, their results added.
            arm = "_.n 1 >- >rf _.n 2 >- >rf >+"
            params = "!_.n"
            call = "%d >rf" % min(n, 14)
        elif shape < 0.85:
            # Two arguments, the given Block run at each level: from level k it rebinds `rf`.
            k = rnd.randrange(0, 6)
            arm = "_.n >_.w  _.n 1 >- _.w >rf " + combine
            params = "!_.w !_.n"
            call = ("{ !_.k _.k %d >< { { !_.a !_.b 100 } !rf } { } >choose !_.g >_.g } !rw  %d rw >rf"
                    % (k, n))
        else:
            # Rebinds itself at level k: a Store write, so its calls stay ordinary ones.
            k = rnd.randrange(0, 6)
            arm = "_.n %d >< { {(x)} !rf } { } >choose !_.g >_.g  _.n 1 >- >rf " % k + combine
            params = "!_.n"
            call = "%d >rf" % n
        for name in ("rf", "rw"):
            scope.store[name] = "any"
        scope.stack.append("any")
        return ("{ %s _. _.n 1 >< { !_. %s } { !_. %s } >choose !_.go >_.go } !rf  %s"
                % (params, base, arm, call))

    def record(self, scope):
        """Record reads: a constructor Block fills a node cell with 1 to 10 fields (up to four
        stay inside the cell, more move to its spilled vector; compiled code makes up to eight
        at once), sometimes one of them written twice, and returns a CellRef to it; it is
        called from the program or from a Block that pushes the values itself; a
        reader Block binds it to a Register name and reads fields below it (`_.t.f2`: the
        compiled leaf lookup of docs/jit.md), sometimes one the node lacks, sometimes through
        a name that holds no CellRef (both errors), sometimes a field auto-vivified as Void or
        holding a CellRef itself (read as the value, not followed). The constructor's `_.n` is
        a record name in compiled code (docs/jit.md, "Record names") unless a deeper write
        makes its Register a heap one; its extras write a field twice, write through a field
        holding a CellRef to a Store cell (read back into `f0`), or take the reference first."""
        rnd = self.rnd
        if rnd.random() < 0.2:
            # A list built by a `list.cons`-shaped constructor in a chained loop (a new record
            # every round; compiled loops make it in their own code), its head read back.
            for name in ("cns", "lst", "ci"):
                scope.store[name] = "any"
            scope.stack += ["any", "any"]
            return ("{ !_.c.next !_.c.value _.c. } !cns  Nil !lst  0 !ci  { ci lst >cns !lst.  "
                    "ci 1 >+ !ci  ci %d >< >block Nil >choose } >chain  lst.%s"
                    % (rnd.randrange(0, 40), rnd.choice(["value", "next.value", "value"])))
        k = rnd.randrange(1, 7) if rnd.random() < 0.85 else rnd.randrange(7, 11)
        fill = " ".join("!_.n.f%d" % i for i in reversed(range(k)))
        if rnd.random() < 0.1:
            # A field written twice in the run of writes that makes a fresh record.
            twice = "!_.n.f%d" % rnd.randrange(k)
            fill = fill.replace(twice, twice + " " + twice, 1)
            k_values = k + 1
        else:
            k_values = k
        if rnd.random() < 0.15:
            fill = "_.n. !_.first " + fill
        extra = rnd.choice(["", "", "7 !_.n.f9.deep", "_.n. !_.n.f9", "3 !_.n.f0",
                            "rtgt. !_.n.w  4 !_.n.w  rtgt !_.n.f0", "_.n. !_.n.w  5 !_.n.w"])
        values = " ".join(self.int_literal() for _ in range(k_values))
        reads = " ".join("_.t.f%d" % rnd.choice(range(k) if rnd.random() < 0.93 else range(10))
                         for _ in range(rnd.randrange(1, 4)))
        subject = "rec" if rnd.random() < 0.95 else rnd.choice(["5", "(s)", "Nil"])
        for name in ("mkr", "rec", "rdr"):
            scope.store[name] = "any"
        scope.stack.append("any")
        # The constructor called from the program, or from a Block (which inlines it, the
        # values pushed by its own code: virtual entries it may write at once).
        make = ("%s >mkr" % values if rnd.random() < 0.5
                else "{ %s >mkr } !mkc  >mkc" % values)
        if make.startswith("{"):
            scope.store["mkc"] = "any"
        return ("{ %s %s _.n. } !mkr  %s !rec  { !_.t %s } !rdr  %s >rdr %s >rdr"
                % (fill, extra, make, reads, subject, subject))

    def dispatch(self, scope):
        """A three-way dispatch: a `choose` whose arm is another `choose` of Blocks, run
        through a Register name (bst's walk; compiled as branches to the three Blocks,
        docs/jit.md), the nested choice in either arm, the Blocks pushing or computing,
        sometimes one leaf not a Block (the generic execution, an error when selected)."""
        rnd = self.rnd
        pivot = rnd.randrange(-3, 6)
        bodies = [rnd.choice(["(lt)", "_.x 1 >+", "_.x _.x >*", "", "_.x >toString (s) >concat"]),
                  rnd.choice(["(gt)", "_.x 1 >-", "7", "_.x >toString"]),
                  rnd.choice(["(eq)", "_.x", "Nil"])]
        # Blocks have no scope: each leaf takes the value from the AL, as bst's arms do.
        leaves = ["{ !_.x %s }" % b for b in bodies]
        if rnd.random() < 0.05:
            leaves[rnd.randrange(3)] = "(notablock)"
        lt = "_.x %d ><" % pivot
        gt = "%d _.x ><" % pivot
        if rnd.random() < 0.5:
            sel = "%s %s %s %s %s >choose >choose" % (lt, leaves[0], gt, leaves[1], leaves[2])
        else:
            sel = "%s %s %s %s >choose %s >choose" % (gt, lt, leaves[0], leaves[2], leaves[1])
        args = " ".join("%d >dsp" % rnd.randrange(-5, 9) for _ in range(rnd.randrange(1, 5)))
        scope.store["dsp"] = "any"
        scope.stack.append("any")
        return "{ !_.x _.x %s !_.go >_.go } !dsp  %s" % (sel, args)

    def endless_loop(self, scope, depth):
        """A `>chain` loop that never ends on its own: the step budget stops it, or, when
        it doubles a string, the memory limit."""
        if self.rnd.random() < 0.4:
            return "(ab) !dbl { dbl dbl >concat !dbl >block } >chain"
        inner = _Scope(scope.store, {}, [])
        body = self.body(inner, depth + 1, self.rnd.randrange(1, 5))
        return "{ %s >block } >chain" % body

    def loop(self, scope, depth):
        """A bounded `>chain` loop whose body leaves the AL as it found it.

        The body is a block, so it runs with a fresh Register: its counter
        lives in the Store.
        """
        counter = "loop%d" % depth
        inner = _Scope(scope.store, {}, [])
        scope.store[counter] = "int"
        body = self.body(inner, depth + 1, self.rnd.randrange(1, 5))
        drops = " ".join("!_.junk" for _ in inner.stack)
        bound = self.rnd.randrange(0, 8)
        scope.stack.append("nil")
        return ("0 !%s { %s %s  %s 1 >+ !%s  %s %d >< >block Nil >choose } >chain"
                % (counter, body, drops, counter, counter, counter, bound))

    def wild(self, scope, depth):
        """Any statement at all, believed or not: errors are compared too."""
        rnd = self.rnd
        scope.stack = []   # beliefs are void after a wild statement
        r = rnd.random()
        if r < 0.3:
            return ">" + rnd.choice(_BUILTINS)[0]
        if r < 0.5:
            return rnd.choice(_STORE_NAMES + _REG_NAMES)
        if r < 0.6:
            return ">" + rnd.choice(["f", "_.x", "a", "_"])
        if r < 0.7:
            return "{ >f } !f"
        if r < 0.8 and depth < 3:
            return "{ " + self.body(_Scope({}, {}, []), depth + 1, rnd.randrange(0, 4)) + " }"
        return self.literal(scope)

    def body(self, scope, depth, count):
        return " ".join(self.statement(scope, depth) for _ in range(count))

    def program(self):
        rnd = self.rnd
        if rnd.random() < LONG_RUN_SHARE:
            scope = _Scope({}, {}, [])
            if rnd.random() < 0.7:
                run = self.hot_loop(scope, rounds=5000)
            else:
                # A long direct recursion (fib's shape, leaf copies at its sites): polls
                # taken early inside a copy that then leaves for its direct call, and the
                # step budget stopping it far from the start.
                run = ("{ !_.n _. _.n 2 >< { !_. _.n } { !_. _.n 1 >- >rl  _.n 2 >- >rl >+ } "
                       ">choose !_.go >_.go } !rl  %d >rl" % rnd.randrange(15, 22))
            text = "%d !difftest.steps %s %s" % (LONG_STEP_BUDGET, self.body(scope, 0, rnd.randrange(0, 4)), run)
        else:
            text = self.body(_Scope({}, {}, []), 0, rnd.randrange(1, 30))
        if rnd.random() < 0.06:
            text = self.damage(text)
        return text

    def damage(self, text):
        rnd = self.rnd
        pos = rnd.randrange(len(text) + 1)
        junk = rnd.choice(["{", "}", "(", "\\zz\\", "!(", ">5", "a..b", "_q", "12ab", "!", ">"])
        return text[:pos] + " " + junk + " " + text[pos:]


def outcome(vm_factory, text):
    """Run `text` on a fresh VM; return a comparable description of what happened.

    Blocks the JIT failed to compile count too: a failure (a caught panic in the compiler)
    leaves the block interpreted, so the AL would not show it, but it is a bug all the same.
    """
    lines = []
    vm = vm_factory(lines.append)
    steps = step_budget(text)
    vm.max_memory = MEMORY_BUDGET if steps == STEP_BUDGET else LONG_MEMORY_BUDGET
    error = None
    try:
        vm.execute_code(text, max_steps=steps)
    except SomaError as err:
        error = (type(err).__name__, err.message, err.line, err.col)
    except Exception as err:
        # A Python exception from a Python-written builtin keeps its class (errors.locate).
        if getattr(err, "soma_line", None) is None:
            raise
        error = (type(err).__name__, str(err), err.soma_line, err.soma_col)
    stats = vm.jit_stats()
    global LAST_STATS
    LAST_STATS = stats
    compile_failures = stats["compile_failures"] if stats else 0
    if error is not None and error[1].startswith("Memory limit exceeded"):
        # Where a memory limit stops the program may differ between the pure-Python
        # tier and the native ones (see the module docstring): class and message only.
        return (None, None, error[:2], compile_failures)
    return (render_al(vm.al), tuple(lines), error, compile_failures)


def _split_statements(text):
    """Top-level statements of a program, as text pieces (braces kept balanced)."""
    pieces, depth, current = [], 0, []
    for word in text.split(" "):
        if not word:
            continue
        current.append(word)
        depth += word.count("{") - word.count("}")
        if depth <= 0:
            pieces.append(" ".join(current))
            current, depth = [], 0
    if current:
        pieces.append(" ".join(current))
    return pieces


def minimize(text, diverges):
    """Drop top-level statements while `diverges(text)` stays true."""
    pieces = _split_statements(text)
    changed = True
    while changed:
        changed = False
        for i in range(len(pieces)):
            trial = pieces[:i] + pieces[i + 1:]
            if trial and diverges(" ".join(trial)):
                pieces = trial
                changed = True
                break
    return " ".join(pieces)


# The JIT statistics of the last run of `outcome` (None on the pure-Python tier).
LAST_STATS = None


def compare(factories, count, seed, report=print, reach=None):
    """Run `count` programs from `seed` on every factory. Return the divergences found.
    `reach`, a dict, counts the programs in which the all-optimized tier compiled
    speculative code (`speculative`), in which that code deoptimized (`deopted`) and in
    which a Block was recompiled speculative with type feedback (`respecialized`), and in
    which a check after a call validated the assumptions again and went on (`revalidated`),
    in which a Block called itself directly (`direct`), in which such a call site took
    the callee's leaves inline (`leaf`, leaf copies) and in which such a Block's
    recursion was unrolled one level instead (`unrolled`), in which speculative code left
    for the executor where a poll was near (`poll_exits`), and in which it took a poll a
    few entries early instead (`early_polls`), and in which a Register holding a
    `choose`'s pick was known in its arms (`known_choices`), in which code that loops
    only when chained was entered outside a chain (`not_chained`); and, over every tier, the
    programs in which a tier installed machine code another tier's VM had generated
    (`cached_in`: the process's code cache), or replayed a translation another VM had made
    (`replayed_in`), and in which a native tier compiled a record
    read below a Register name (`child_reads`), a record name's writes (`records`), a
    fresh record's field writes as one call (`record_batches`), `isNil` or `isVoid` inline
    (`singleton_tests`) or a
    nested `choose` of Blocks as branches (`nested_choices`)."""
    names = list(factories)
    gen = Generator(seed)
    divergences = []
    for index in range(count):
        text = gen.program()
        results = {}
        for name in names:
            results[name] = outcome(factories[name], text)
            if reach is not None and LAST_STATS and LAST_STATS.get("code_cache_hits", 0):
                reach.setdefault("cached_in", set()).add(index)
            if reach is not None and LAST_STATS and LAST_STATS.get("replayed", 0):
                reach.setdefault("replayed_in", set()).add(index)
            if name == "jit-optimized" and reach is not None and LAST_STATS:
                if LAST_STATS.get("speculative", 0):
                    reach["speculative"] = reach.get("speculative", 0) + 1
                    if LAST_STATS.get("deopts", 0):
                        reach["deopted"] = reach.get("deopted", 0) + 1
                    if LAST_STATS.get("respecialized", 0):
                        reach["respecialized"] = reach.get("respecialized", 0) + 1
                    if LAST_STATS.get("revalidated", 0):
                        reach["revalidated"] = reach.get("revalidated", 0) + 1
                    if LAST_STATS.get("direct_call_sites", 0):
                        reach["direct"] = reach.get("direct", 0) + 1
                    if LAST_STATS.get("leaf_copies", 0):
                        reach["leaf"] = reach.get("leaf", 0) + 1
                    if LAST_STATS.get("unrolled", 0):
                        reach["unrolled"] = reach.get("unrolled", 0) + 1
                    if LAST_STATS.get("poll_exits", 0):
                        reach["poll_exits"] = reach.get("poll_exits", 0) + 1
                    if LAST_STATS.get("early_polls", 0):
                        reach["early_polls"] = reach.get("early_polls", 0) + 1
                    if LAST_STATS.get("folded_compares", 0):
                        reach["folded"] = reach.get("folded", 0) + 1
                    if LAST_STATS.get("known_choices", 0):
                        reach["known_choices"] = reach.get("known_choices", 0) + 1
                    if dict(LAST_STATS.get("deopts_by_reason") or []).get("entered outside a chain", 0):
                        reach["not_chained"] = reach.get("not_chained", 0) + 1
            if name == "jit-background" and reach is not None and LAST_STATS:
                if LAST_STATS.get("calls_moved", 0):
                    reach["calls_moved"] = reach.get("calls_moved", 0) + 1
            if name.startswith("jit") and reach is not None and LAST_STATS:
                if LAST_STATS.get("child_read_sites", 0):
                    reach.setdefault("child_reads", set()).add(index)
                if LAST_STATS.get("record_sites", 0):
                    reach.setdefault("records", set()).add(index)
                if LAST_STATS.get("record_batches", 0):
                    reach.setdefault("record_batches", set()).add(index)
                if LAST_STATS.get("singleton_tests", 0):
                    reach.setdefault("singleton_tests", set()).add(index)
                if LAST_STATS.get("sunk_cells", 0):
                    reach.setdefault("sunk", set()).add(index)
                if LAST_STATS.get("region_reentries", 0):
                    reach.setdefault("region_reentries", set()).add(index)
                if LAST_STATS.get("bounded_checks", 0):
                    reach.setdefault("bounded", set()).add(index)
                if LAST_STATS.get("fused_checks", 0):
                    reach.setdefault("fused", set()).add(index)
                if LAST_STATS.get("realized_chains", 0):
                    reach.setdefault("realized_chains", set()).add(index)
                if LAST_STATS.get("known_chains", 0):
                    reach.setdefault("known_chains", set()).add(index)
                if LAST_STATS.get("exit_reserved_slots", 0):
                    reach.setdefault("exit_reserved", set()).add(index)
                if LAST_STATS.get("retaken_entries", 0):
                    reach.setdefault("retaken", set()).add(index)
                if dict(LAST_STATS.get("deopts_by_reason") or []).get("AL changed under a direct call", 0):
                    reach.setdefault("retake_failed", set()).add(index)
                if dict(LAST_STATS.get("deopts_by_reason") or []).get("direct call result not a small Int", 0):
                    reach.setdefault("int_result_failed", set()).add(index)
                if LAST_STATS.get("aligned_loops", 0):
                    reach.setdefault("aligned", set()).add(index)
                if dict(LAST_STATS.get("deopts_by_reason") or []).get("loop entered outside its bound", 0):
                    reach.setdefault("outside_bound", set()).add(index)
                if LAST_STATS.get("nested_choices", 0):
                    reach.setdefault("nested_choices", set()).add(index)
                if LAST_STATS.get("partial_flushes", 0):
                    reach.setdefault("partial_flushes", set()).add(index)
        base = results[names[0]]
        if all(results[n] == base for n in names[1:]):
            continue

        def diverges(candidate):
            first = outcome(factories[names[0]], candidate)
            return any(outcome(factories[n], candidate) != first for n in names[1:])

        small = minimize(text, diverges)
        detail = {n: outcome(factories[n], small) for n in names}
        divergences.append((index, small, detail))
        report("DIVERGENCE program %d (seed %d): %s" % (index, seed, small))
        for n in names:
            report("  %-8s %r" % (n, detail[n]))
    return divergences


def available_factories(max_depth=200):
    """A VM factory per tier that can run in this process: pure Python always; with the
    extension built, the native backend without compilation and with everything compiled.
    """
    from .vm import VM

    class PythonVM(VM):
        # A subclass of VM is never redirected to the native backend by VM.__new__.
        pass

    factories = {"python": lambda out: PythonVM(stdlib=False, max_depth=max_depth, output=out)}
    try:
        from .native import NativeVM, _native
    except ImportError:
        return factories
    if _native is None:
        return factories

    def native(threshold, background=None, opt="off", unroll=None, leaf=None):
        return lambda out: NativeVM(stdlib=False, max_depth=max_depth, output=out,
                                    jit_threshold=threshold, jit_background=background,
                                    jit_opt_threshold=opt, jit_unroll=unroll, jit_leaf=leaf)

    factories["native"] = native("off")
    factories["jit"] = native("0")
    # Tier-up in the background: blocks compiled on the compile thread after one run and
    # installed at the next safepoint, mid-program (lockstep makes that point deterministic,
    # so a divergence reproduces); from their third run, compiled again by the optimizing
    # tier, which replaces the baseline code mid-program too; a recursion whose code polls
    # is compiled again unrolled (no leaf copies here: code with them is not unrolled), and
    # moves over to that code mid-recursion.
    factories["jit-background"] = native("1", "lockstep", "3", "1", leaf=False)
    # Every block compiled by the optimizing tier before its first run: speculative code
    # (docs/jit.md) wherever a Block can speculate, deopting wherever its assumptions fail;
    # direct recursion with leaf copies.
    factories["jit-optimized"] = native("0", None, "0", leaf=True)
    return factories


def main(argv=None):
    parser = argparse.ArgumentParser(description="Differential testing of SOMA tiers.")
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--show", action="store_true", help="print the programs instead")
    args = parser.parse_args(argv)
    if args.show:
        gen = Generator(args.seed)
        for _ in range(args.count):
            print(gen.program())
        return 0
    factories = available_factories()
    reach = {}
    found = compare(factories, args.count, args.seed, reach=reach)
    print("%d programs on %s: %d divergences" % (args.count, ", ".join(factories), len(found)))
    if "jit-optimized" in factories:
        print("speculative code compiled in %d programs, deoptimized in %d, recompiled with "
              "type feedback in %d, validated again after a call in %d, calling itself "
              "directly in %d (taking its leaves inline in %d, its recursion unrolled in %d), "
              "leaving near a poll in %d, "
              "taking a poll early in %d, "
              "folding compares in %d, knowing a choice in its arms in %d, leaving "
              "chained-only code entered outside a chain in %d; machine code "
              "from the code cache in %d; record reads compiled in %d; record names in %d "
              "(fields written at once in %d); isNil or isVoid inline in %d; "
              "a recursion moved over to its unrolled code in %d; three-way dispatch compiled in %d; "
              "inlined paths merged keeping their top entries virtual in %d; "
              "Store writes sunk in %d; rounds re-entered inside their poll region in %d; "
              "overflow checks dropped by a loop's bound in %d (its entry guard failing in %d); "
              "a product's and a sum's checks made one in %d; "
              "a chain run under inlined bodies' frames made real in %d; "
              "a known Block chained by a direct call in %d; "
              "entries under a direct call taken back after it in %d (found changed in %d); "
              "a direct call's result not a small Int in %d; "
              "shadow slots reserved by the exits in %d; "
              "loop headers aligned in %d; translations replayed in %d"
              % (reach.get("speculative", 0), reach.get("deopted", 0),
                 reach.get("respecialized", 0), reach.get("revalidated", 0),
                 reach.get("direct", 0), reach.get("leaf", 0), reach.get("unrolled", 0),
                 reach.get("poll_exits", 0),
                 reach.get("early_polls", 0), reach.get("folded", 0),
                 reach.get("known_choices", 0), reach.get("not_chained", 0),
                 len(reach.get("cached_in", ())),
                 len(reach.get("child_reads", ())), len(reach.get("records", ())),
                 len(reach.get("record_batches", ())), len(reach.get("singleton_tests", ())),
                 reach.get("calls_moved", 0),
                 len(reach.get("nested_choices", ())), len(reach.get("partial_flushes", ())),
                 len(reach.get("sunk", ())),
                 len(reach.get("region_reentries", ())), len(reach.get("bounded", ())),
                 len(reach.get("outside_bound", ())), len(reach.get("fused", ())),
                 len(reach.get("realized_chains", ())),
                 len(reach.get("known_chains", ())),
                 len(reach.get("retaken", ())), len(reach.get("retake_failed", ())),
                 len(reach.get("int_result_failed", ())),
                 len(reach.get("exit_reserved", ())),
                 len(reach.get("aligned", ())),
                 len(reach.get("replayed_in", ()))))
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
