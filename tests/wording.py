"""The two multi-line runtime messages, spelled out for the assertions that expect them.

`Undefined Store path` and `Undefined Register path` carry the reference SOMA's hint
lines (docs/semantics.md); the tests compare whole messages, so they build them here.
"""


def undefined_store(path):
    return ("Undefined Store path: '%s'\n"
            "  Path was never set. Did you mean to:\n"
            "    - Initialize it first: () !%s\n"
            "    - Set a nested value: <value> !%s.<child>\n"
            "    - Check a different path?\n"
            "  Hint: Auto-vivified intermediate paths can be read after writing to children.\n"
            "        Example: 42 !a.b.c creates 'a' and 'a.b' with Void, which can be read."
            % (path, path, path))


def undefined_register(path):
    """`path` as the message spells it: `_.x`, or `_.` for the root."""
    return ("Undefined Register path: '%s'\n"
            "  Register paths must be written before reading.\n"
            "  Did you forget: <value> !%s?" % (path, path))
