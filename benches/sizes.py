"""The benchmark programs at sizes other than their own: a SOMA program of
benches/programs, or one of its peers in benches/peers, rewritten for another
problem size, with the expected results that depend on the size rewritten with
it (each program checks its own answer, so a resized program still fails
loudly on a wrong one).

    resize("collatz", "soma", text, 30000)   # the rewritten source
    resize("fib", "lua", text, 30)

Sizes used by the benchmark scripts:

* SMALL (benches/tierup.py): a size at which a program runs a few ms, to see
  whether tier-up costs a short program anything;
* STEADY (benches/compare.py --size steady): a size at which one-time costs
  (our tier-up and compiles; the peers' are outside their timed region or
  amortized over warm repeats) are a small part of the run, so the figures
  compare steady-state speed. Only the programs the peer targets of the
  optimizing-tier issue name (loops and recursion) have one.

A rule is a piece of the source that must be there (a changed source fails
here instead of timing garbage) and what it becomes at size n. Every
occurrence is replaced (comments that state the size included).
"""

# Languages: the extension of their files, "soma" for benches/programs.
LANGUAGES = ("soma", "py", "lua", "rs")


def collatz_total(limit):
    """Total Collatz steps of every start value 1..limit."""
    total = 0
    for start in range(1, limit + 1):
        n, steps = start, 0
        while n > 1:
            n = n // 2 if n % 2 == 0 else 3 * n + 1
            steps += 1
        total += steps
    return total


def fib(n):
    a, b = 0, 1
    for _ in range(n):
        a, b = b, a + b
    return a


def _same(old, fmt, value=lambda n: n):
    """One rule for every language: `old` becomes `fmt % value(n)`."""
    return {lang: [(old, lambda n: fmt % value(n))] for lang in LANGUAGES}


def _merge(*parts):
    out = {}
    for part in parts:
        for lang, rules in part.items():
            out.setdefault(lang, []).extend(rules)
    return out


def _one(lang, old, fmt, value=lambda n: n):
    return {lang: [(old, lambda n: fmt % value(n))]}


RULES = {
    "chain_loop": _merge(
        {lang: [("1000000", lambda n: str(n))] for lang in ("soma", "py", "lua")},
        _one("rs", "1_000_000", "%d"),
    ),
    "collatz": _merge(
        _one("soma", "i 3000 >=<", "i %d >=<"),
        _one("py", "i <= 3000", "i <= %d"),
        _one("lua", "i <= 3000", "i <= %d"),
        _one("rs", "s.i <= 3000", "s.i <= %d"),
        _same("215063", "%d", collatz_total),
    ),
    "fib": _merge(
        _one("soma", "24 >fib", "%d >fib"),
        _one("py", "fib(24)", "fib(%d)"),
        _one("lua", "fib(24)", "fib(%d)"),
        _one("rs", "fib(black_box(24))", "fib(black_box(%d))"),
        _same("46368", "%d", fib),
    ),
    # The SOMA programs only (benches/tierup.py's small sizes).
    "dict_workload": {"soma": [
        ("2000 !N", lambda n: "%d !N" % n),
        ("sum 3998000", lambda n: "sum %d" % (n * (n - 1))),
        ("found 1000", lambda n: "found %d" % (n // 2)),
        ("dict.size 1000", lambda n: "dict.size %d" % (n // 2)),
        ("2000000 >==", lambda n: "%d >==" % (2 * sum(range(1, n, 2)))),
    ]},
    "list_map_fold": {"soma": [
        ("20000 !N", lambda n: "%d !N" % n),
        ("399980000", lambda n: str(n * (n - 1))),
    ]},
    # n appends of (ab); the other string doubles (ab) until it is as long (n a power of 2).
    "string_build": {"soma": [
        ("i 16384 ><", lambda n: "i %d ><" % n),
        ("j 14 ><", lambda n: "j %d ><" % _log2(n)),
    ]},
    # n keys (n = 2^a * 5^b with 4 | n keeps x' = 3821x + 7919 mod n full-period), the kept
    # tree after n/2 inserts, 2n lookups.
    "bst": {"soma": [
        ("4321 !x", lambda n: "%d !x" % (4321 % n)),
        ("7919 >+ 8000 >%", lambda n: "7919 >+ %d >%%" % n),
        ("4000 !limit", lambda n: "%d !limit" % (n // 2)),
        ("8000 !limit", lambda n: "%d !limit" % n),
        ("16000 >% tree", lambda n: "%d >%% tree" % (2 * n)),
        ("i 16000 ><", lambda n: "i %d ><" % (2 * n)),
        ("found 8000", lambda n: "found %d" % n),
        ("sum 95988000", lambda n: "sum %d" % (3 * n * (n - 1) // 2)),
        ("bst.size 8000", lambda n: "bst.size %d" % n),
        ("bst.size 4000", lambda n: "bst.size %d" % (n // 2)),
    ]},
}

SMALL = {"bst": 200, "chain_loop": 2000, "collatz": 100, "dict_workload": 100, "fib": 14,
         "list_map_fold": 300, "string_build": 256}

# About 10x (fib: 18x) the work of the programs' own sizes: 10 million loop rounds, fib(30)
# (2.7 million calls), 3.4 million Collatz steps.
STEADY = {"chain_loop": 10_000_000, "collatz": 30_000, "fib": 30}


def _log2(n):
    k = n.bit_length() - 1
    if 1 << k != n:
        raise ValueError("string_build's size must be a power of two, not %d" % n)
    return k


def can_resize(program, lang):
    return lang in RULES.get(program, {})


def resize(program, lang, text, n):
    """`text` (the source of `program` in `lang`) rewritten for size `n`."""
    rules = RULES.get(program, {}).get(lang)
    if rules is None:
        raise KeyError("no size rules for %s in %s" % (program, lang))
    for old, new in rules:
        if old not in text:
            raise SystemExit("benches/sizes.py: %r not found in %s (%s); update its rules"
                             % (old, program, lang))
        text = text.replace(old, new(n))
    return text
