"""The serialized form's constants, loaded from `format.tsv` (shared with the Rust runtime,
whose build script generates the same names from the same file).

After import: `MAGIC` (bytes), `VERSION`, the constant tags `CONST_INT`, `CONST_BIGINT`,
`CONST_STR`, `CONST_BLOCK`, and the path roots `ROOT_STORE`, `ROOT_REGISTER` (ints).
"""

import os

TABLE_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "format.tsv")


def load_table(path=TABLE_PATH):
    table = {}
    with open(path, encoding="utf-8") as f:
        for raw in f:
            line = raw.rstrip("\n")
            if not line or line.startswith("#"):
                continue
            name, value, _meaning = line.split("\t")
            if name in table:
                raise ValueError("format.tsv: %s defined twice" % name)
            table[name] = value.encode("ascii") if name == "MAGIC" else int(value)
    return table


FORMAT = load_table()
globals().update(FORMAT)
