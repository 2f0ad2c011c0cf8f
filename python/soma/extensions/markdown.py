"""The `markdown` extension: SOMA programs that write documents (`(markdown) >use`).

A program starts a document with `>md.start`, which leaves a Void on the AL: block words
take the values pushed above the nearest Void (the *items*), add their text to the
document and leave a Void again, so that the next words find theirs. `>md.print` writes
the document to standard output, `(file) >md.render` to a file.

    md.start                      new document; Markdown output; pushes Void
    md.h1 .. md.h4                items joined by spaces, as a heading
    md.p  md.q                    each item a paragraph / a blockquote line
    (lines..) LANG md.code        a fenced code block; LANG a Str, () or Nil for none
    md.hr                         a horizontal rule (takes no items)
    T md.b  T md.i  T md.c        bold, italic, inline code: replace T by formatted text
    TEXT URL md.l                 a link
    md.t                          items concatenated into one Str (inline text)
    md.uli md.oli                 items concatenated into one list item (a placeholder)
    LABEL PARTS.. md.dli          a definition item `**LABEL**: PARTS`
    md.ul md.ol                   items (Strs and placeholders) as a list
    md.dul md.dol                 definition items, or LABEL VALUE pairs, as a list
    md.nest                       items so far open a nested list (see markdown_lists)
    md.dt                         pairs as `**a** b **c** d` (one Str)
    md.dl                         pairs as separate `**a**: b` Strs
    md.table.header/.align/.row   table cells; md.table.left/centre/right: alignments
    md.table                      the table built so far
    md.print   FILE md.render     output the document, then start a new one (same emitter)
    EMITTER md.emitter            switch output: md.mdEmitter or md.htmlEmitter

Words that add a block leave two Voids where there was one (the reference VM does the
same; documents depend on the AL shape only above the nearest Void).

State lives in the Store under `md.state` (`doc`, `emitter`, `depth`, `stack`,
`oli.items`, `uli.items`, `dli.items`, `table.header/rows/alignment`), so Python code can
read it with `vm.store.read_value(["md", "state", "doc"])` and swap the emitter for any
object with the methods of markdown_emitter. The words are Python builtins under `use.md`,
also stored at `md.*`; they run the same way on every tier.
"""

from ..errors import RuntimeError as SomaRuntimeError
from ..values import NIL, VOID, type_name
from .markdown_emitter import HtmlEmitter, MarkdownEmitter, strip_all_tags
from .markdown_lists import (
    ACCUMULATORS, DEFINITION_ORDERED, DEFINITION_UNORDERED, ORDERED, UNORDERED,
    DliPlaceholder, ListItemPlaceholder, NestLevel, OliPlaceholder, UliPlaceholder,
    CONSUMER, as_text, reject_placeholders, render_list)

__all__ = ["register", "get_soma_setup", "OliPlaceholder", "UliPlaceholder",
           "DliPlaceholder"]


# -- the Store state ------------------------------------------------------------

def _read(vm, *path):
    return vm.store.read_value(("md", "state") + path)


def _write(vm, value, *path):
    vm.store.write_value(("md", "state") + path, value)


def _list_at(vm, *path):
    """A list kept in the state, or [] if it is missing or not a list."""
    try:
        value = _read(vm, *path)
    except SomaRuntimeError:
        return []
    return value if isinstance(value, list) else []


def _emitter(vm):
    return _read(vm, "emitter")


def _append(vm, text):
    _write(vm, _read(vm, "doc") + text, "doc")


# -- the AL -------------------------------------------------------------------

def _pop(vm, word):
    if not vm.al:
        raise SomaRuntimeError("AL underflow: %s requires 1 value" % word)
    return vm.al.pop()


def _drain(vm, word, stop_at_placeholder=False, check=None):
    """Pop the items above the nearest Void (which is popped too); return them in push
    order, and whether a list item placeholder stopped the drain first (it is left on
    the AL, above its Void, when `stop_at_placeholder`). `check(item)` may raise for an
    item as it is popped: the items below it and the Void stay on the AL."""
    al = vm.al
    items = []
    while True:
        if not al:
            raise SomaRuntimeError("%s: no Void below its items on the AL "
                                   "(did the document start with >md.start?)" % word)
        item = al.pop()
        if item is VOID:
            stopped = False
            break
        if stop_at_placeholder and isinstance(item, ListItemPlaceholder):
            al.append(item)
            stopped = True
            break
        if check is not None:
            check(item)
        items.append(item)
    items.reverse()
    return items, stopped


def _joined(vm, word, separator):
    """Drain Strs (a placeholder ends the drain) and join them with the emitter; the
    Void goes back unless a placeholder stopped the drain."""
    def must_be_str(item):
        if type(item) is not str:
            raise TypeError("Text concatenation (>%s) requires string items, got %s %r "
                            "(to write an operator such as - as text, push it as a Str: "
                            "(-))" % (word, type_name(item), item))

    items, stopped = _drain(vm, word, stop_at_placeholder=True, check=must_be_str)
    emitter = _emitter(vm)
    text = emitter.join(items, separator) if separator else emitter.concat(items)
    if not stopped:
        vm.al.append(VOID)
    return text


def _texts(vm, word):
    """Drain plain items (no placeholders) as Strs."""
    items, _ = _drain(vm, word)
    reject_placeholders(items, ">" + word)
    return [as_text(item) for item in items]


def _pairs(items, word, second):
    if len(items) % 2:
        raise ValueError("%s requires an even number of items (label/value pairs), got %d: "
                         "%r. Hint: Each label needs a %s." % (word, len(items), items, second))


# -- the words ----------------------------------------------------------------

def start(vm):
    markdown = MarkdownEmitter()
    store = vm.store
    _write(vm, "", "doc")
    store.write_value(("md", "mdEmitter"), markdown)
    _write(vm, markdown, "emitter")
    store.write_value(("md", "htmlEmitter"), HtmlEmitter())
    _write(vm, [], "stack")
    _write(vm, 0, "depth")
    for part in ("header", "rows", "alignment"):
        _write(vm, [], "table", part)
    for name in ACCUMULATORS:
        _write(vm, [], name, "items")
    vm.al.append(VOID)


def _heading_word(level):
    def heading(vm):
        text = _joined(vm, "md.h%d" % level, " ")
        _append(vm, getattr(_emitter(vm), "heading%d" % level)(text))
        vm.al.append(VOID)
    return heading


def _block_word(word, method):
    def block(vm):
        emitter = _emitter(vm)
        _append(vm, getattr(emitter, method)(_texts(vm, word)))
        vm.al.extend((VOID, VOID))
    return block


def code_block(vm):
    emitter = _emitter(vm)
    language = _pop(vm, "md.code")
    language = None if language is NIL or as_text(language) == "" else as_text(language)
    _append(vm, emitter.code_block(_texts(vm, "md.code"), language))
    vm.al.extend((VOID, VOID))


def rule(vm):
    _append(vm, _emitter(vm).horizontal_rule())
    vm.al.append(VOID)


# The reference's inline words pass their operands to Python as a Void-terminated
# argument list (`Void emitter text (f) >use.python.call`), so a Void operand ends the
# arguments early: the call fails, and what was pushed below the Void stays on the AL,
# with Void as the word's result. Documents depend on it (`(x) >md.p >md.b` formats the
# Void that md.p left), so these words do the same: `_void_operand` leaves what the
# reference leaves.

def _void_operand(vm, emitter, operands):
    """If an operand is Void: push what the reference's failed call leaves, return True."""
    if not any(v is VOID for v in operands):
        return False
    passed = [VOID, emitter] + list(operands)
    cut = len(passed) - 1 - passed[::-1].index(VOID)    # the topmost Void ends the args
    vm.al.extend(passed[:cut])
    vm.al.append(VOID)
    return True


def _inline_word(word, method):
    def inline(vm):
        text = _pop(vm, word)
        emitter = _emitter(vm)
        if not _void_operand(vm, emitter, (text,)):
            vm.al.append(getattr(emitter, method)(as_text(text)))
    return inline


def link(vm):
    url = _pop(vm, "md.l")
    text = _pop(vm, "md.l")
    emitter = _emitter(vm)
    if not _void_operand(vm, emitter, (text, url)):
        vm.al.append(emitter.link(as_text(text), as_text(url)))


def inline_text(vm):
    vm.al.append(_joined(vm, "md.t", ""))


def _placeholder_for(vm, name, text, stopped):
    accumulator = _list_at(vm, name, "items")
    _write(vm, accumulator + [text], name, "items")
    if not stopped:
        vm.al.append(VOID)
    kind = {"oli": OliPlaceholder, "uli": UliPlaceholder, "dli": DliPlaceholder}[name]
    vm.al.append(kind(len(accumulator)))


def _item_word(name):
    def item(vm):
        items, stopped = _drain(vm, "md." + name, stop_at_placeholder=True)
        _placeholder_for(vm, name, _emitter(vm).concat([as_text(i) for i in items]), stopped)
    return item


def definition_item(vm):
    items, stopped = _drain(vm, "md.dli", stop_at_placeholder=True)
    if len(items) < 2:
        raise SomaRuntimeError("md.dli requires at least label and value, got %d item(s): "
                               "push (Label) (value parts..) then >md.dli" % len(items))
    emitter = _emitter(vm)
    value = emitter.concat([as_text(part) for part in items[1:]])
    _placeholder_for(vm, "dli", emitter.list_item_formatted(as_text(items[0]), value), stopped)


def data_title(vm):
    items = _texts(vm, "md.dt")
    _pairs(items, "md.dt", "value")
    text = _emitter(vm).data_title(items)
    vm.al.extend((VOID, text))


def definitions(vm):
    items = _texts(vm, "md.dl")
    _pairs(items, "md.dl", "definition")
    emitter = _emitter(vm)
    vm.al.append(VOID)
    vm.al.extend(emitter.list_item_formatted(items[i], items[i + 1])
                 for i in range(0, len(items), 2))


def _list_word(kind):
    def list_word(vm):
        depth = _read(vm, "depth")
        stack = _read(vm, "stack")
        accumulator = _list_at(vm, kind.accumulator, "items")
        emitter = _emitter(vm)
        items, _ = _drain(vm, kind.word)
        text, depth, stack = render_list(kind, items, int(depth), stack, accumulator,
                                         emitter)
        _write(vm, depth, "depth")
        _write(vm, stack, "stack")
        _write(vm, [], kind.accumulator, "items")
        _append(vm, text)
        vm.al.extend((VOID, VOID))
    return list_word


def nest(vm):
    items, _ = _drain(vm, "md.nest")
    items = [item if isinstance(item, ListItemPlaceholder) else as_text(item)
             for item in items]
    depth = _read(vm, "depth")
    stack = _read(vm, "stack")
    saved = NestLevel(items, depth, {name: list(_list_at(vm, name, "items"))
                                     for name in ACCUMULATORS})
    _write(vm, (stack if isinstance(stack, list) else []) + [saved], "stack")
    for name in ACCUMULATORS:
        _write(vm, [], name, "items")
    _write(vm, depth + 1, "depth")
    vm.al.append(VOID)


def _table_part_word(part):
    def table_part(vm):
        cells = _texts(vm, "md.table.header/row/align")
        if part == "rows":
            rows = _read(vm, "table", "rows")
            cells = (rows if isinstance(rows, list) else []) + [cells]
        _write(vm, cells, "table", part)
        vm.al.extend((VOID, VOID))
    return table_part


def table(vm):
    header = _read(vm, "table", "header")
    rows = _read(vm, "table", "rows")
    alignment = _read(vm, "table", "alignment")
    _append(vm, _emitter(vm).table(header, rows, alignment))
    for part in ("header", "rows", "alignment"):
        _write(vm, [], "table", part)
    vm.al.append(VOID)


def _check_consumed(vm):
    """Output refuses a document with accumulated list items no list word consumed."""
    for name, placeholder in (("oli", OliPlaceholder), ("uli", UliPlaceholder),
                              ("dli", DliPlaceholder)):
        if _list_at(vm, name, "items"):
            hint = ">md.dul or >md.dol" if name == "dli" else ">md.ol or >md.ul"
            raise SomaRuntimeError(
                ">md.render/print encountered unconsumed %s: the items made by >md.%s must "
                "be consumed by %s before output. Did you forget to call %s?"
                % (placeholder.__name__, name, CONSUMER[placeholder], hint))


def _finish(vm):
    _write(vm, "", "doc")
    _write(vm, [], "stack")
    _write(vm, 0, "depth")


def print_document(vm):
    _check_consumed(vm)
    doc = _read(vm, "doc")
    if isinstance(doc, ListItemPlaceholder):
        raise SomaRuntimeError("the document is a list item placeholder, not text")
    vm.write_line(strip_all_tags(str(doc)))
    _finish(vm)
    vm.al.append(VOID)


def render_document(vm):
    filename = _pop(vm, "md.render")
    _check_consumed(vm)
    try:
        with open(as_text(filename), "w") as out:
            out.write(strip_all_tags(str(_read(vm, "doc"))))
    except OSError as exc:
        # As the reference: the failure is reported on standard output, the run goes on.
        vm.write_line("Error writing markdown file: ")
        vm.write_line(repr(exc))
        return
    _finish(vm)


def set_emitter(vm):
    _write(vm, _pop(vm, "md.emitter"), "emitter")


# -- registration ---------------------------------------------------------------

_BUILTINS = {
    "start": start,
    "h1": _heading_word(1), "h2": _heading_word(2),
    "h3": _heading_word(3), "h4": _heading_word(4),
    "p": _block_word("md.p", "paragraph"),
    "q": _block_word("md.q", "blockquote"),
    "code": code_block,
    "hr": rule,
    "b": _inline_word("md.b", "bold"),
    "i": _inline_word("md.i", "italic"),
    "c": _inline_word("md.c", "code"),
    "l": link,
    "t": inline_text,
    "oli": _item_word("oli"),
    "uli": _item_word("uli"),
    "dli": definition_item,
    "dt": data_title,
    "dl": definitions,
    "ul": _list_word(UNORDERED),
    "ol": _list_word(ORDERED),
    "dul": _list_word(DEFINITION_UNORDERED),
    "dol": _list_word(DEFINITION_ORDERED),
    "nest": nest,
    "table.header": _table_part_word("header"),
    "table.align": _table_part_word("alignment"),
    "table.row": _table_part_word("rows"),
    "table": table,
    "print": print_document,
    "render": render_document,
    "emitter": set_emitter,
}


def register(vm):
    for word, fn in _BUILTINS.items():
        vm.register_extension_builtin("use.md." + word, fn)


def get_soma_setup():
    # Each md.* word is its builtin itself (the reference wraps each in a Block), so an
    # error in a word is reported at the program's own statement; the table alignments
    # are Blocks pushing a Str.
    lines = ["use.md.%s !md.%s" % (word, word) for word in _BUILTINS]
    lines += ["{ (left) } !md.table.left", "{ (centre) } !md.table.centre",
              "{ (right) } !md.table.right"]
    return "\n".join(lines) + "\n"
