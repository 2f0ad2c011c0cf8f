"""Lists of the `markdown` extension: item placeholders, nesting levels, rendering.

A list item may be built from several pieces (`(see ) (x) >md.c >md.uli`): the word
concatenates them, appends the result to an accumulator in the Store
(`md.state.uli.items`, `oli`, `dli`) and leaves a *placeholder* on the AL that stands for
it. `>md.ul` (`ol`, `dul`, `dol`) then drains the AL down to Void and puts each
placeholder's accumulated text back in its place; anything else is an item as it is.

Nesting. `>md.nest` saves the items drained so far as a level (`NestLevel`: the items,
the depth they were at, and the accumulators, which start empty for the nested list)
and raises the depth. A list word closing a deeper list renders it and keeps its text on
the enclosing level (`nested_text`); the list word at the level's own depth renders the
saved items, the nested text and its own items as one list. Markdown places a nested list
by indentation, after the saved items; HTML places it inside the first saved item's
`<li>`. Both rules are the reference implementation's, output for output.
"""

from ..errors import RuntimeError as SomaRuntimeError
from ..values import Block, Builtin, CellRef, Singleton, render


def as_text(value):
    """A value as document text: a Str as itself, an Int in decimal, the singletons by
    name (as the reference); a Block, builtin or CellRef as `print` shows it (the same on
    every tier); any other Python object as `str()` gives it."""
    if type(value) is str:
        return value
    if isinstance(value, (int, Singleton)):
        return render(value)
    if isinstance(value, (Block, Builtin, CellRef)):
        return render(value)
    return str(value)


class ListItemPlaceholder:
    """Stands on the AL for the accumulated list item number `index`."""

    __slots__ = ("index",)

    def __init__(self, index):
        self.index = index

    def __repr__(self):
        return "%s(%d)" % (type(self).__name__, self.index)


class OliPlaceholder(ListItemPlaceholder):
    """An ordered-list item made by `>md.oli`."""
    __slots__ = ()


class UliPlaceholder(ListItemPlaceholder):
    """An unordered-list item made by `>md.uli`."""
    __slots__ = ()


class DliPlaceholder(ListItemPlaceholder):
    """A definition item made by `>md.dli`."""
    __slots__ = ()


class ListKind:
    """What distinguishes the four list words."""

    __slots__ = ("word", "ordered", "placeholder", "accumulator", "pairs")

    def __init__(self, word, ordered, placeholder, accumulator, pairs):
        self.word = word                  # as written (">md.ul"), for messages
        self.ordered = ordered            # numbered items
        self.placeholder = placeholder    # the placeholder type it resolves
        self.accumulator = accumulator    # "oli", "uli" or "dli": md.state.<it>.items
        self.pairs = pairs                # definition list: label/value pairs allowed


UNORDERED = ListKind(">md.ul", False, UliPlaceholder, "uli", False)
ORDERED = ListKind(">md.ol", True, OliPlaceholder, "oli", False)
DEFINITION_UNORDERED = ListKind(">md.dul", False, DliPlaceholder, "dli", True)
DEFINITION_ORDERED = ListKind(">md.dol", True, DliPlaceholder, "dli", True)

ACCUMULATORS = ("oli", "uli", "dli")

# Which word consumes each placeholder type (for messages).
CONSUMER = {OliPlaceholder: ">md.ol", UliPlaceholder: ">md.ul",
            DliPlaceholder: ">md.dul or >md.dol"}

# Messages name the words as programs write them (`>md.ul`) and the placeholder type,
# and end with the likely fix, in the reference's terms.


class NestLevel:
    """A list level saved by `>md.nest` (see the module docstring)."""

    __slots__ = ("items", "depth", "accumulators", "nested_text")

    def __init__(self, items, depth, accumulators):
        self.items = items                # Strs and placeholders, in push order
        self.depth = depth
        self.accumulators = accumulators  # {"oli": [...], "uli": [...], "dli": [...]}
        self.nested_text = ""

    def __repr__(self):
        return "NestLevel(depth=%d, %d items)" % (self.depth, len(self.items))


def reject_placeholders(items, word):
    """Words that take plain text refuse a list item placeholder among their items.
    `word` is as written, e.g. ">md.p"."""
    for position, item in enumerate(items):
        if isinstance(item, ListItemPlaceholder):
            consumer = CONSUMER[type(item)]
            message = ("%s encountered %s at position %d: a list item from >md.oli/uli/dli "
                       "must be consumed by its list word before %s. Did you forget to "
                       "call %s?" % (word, type(item).__name__, position, word, consumer))
            if word in (">md.dl", ">md.dt"):
                message += (" Hint: %s processes items in pairs, and a placeholder cannot "
                            "be one of them; consume placeholders with %s BEFORE calling "
                            "%s, or keep them below the Void." % (word, consumer, word))
            raise SomaRuntimeError(message)


def _accumulated(placeholder, accumulator):
    if 0 <= placeholder.index < len(accumulator):
        return accumulator[placeholder.index]
    raise SomaRuntimeError("%s refers to item %d, but only %d item(s) were accumulated"
                           % (placeholder, placeholder.index, len(accumulator)))


def resolve_items(kind, items, accumulator, emitter):
    """The item texts of a list word's drained items."""
    if kind.pairs and not any(isinstance(item, kind.placeholder) for item in items):
        # A definition list written as label/value pairs.
        if len(items) % 2:
            raise ValueError("%s requires an even number of items (label/value pairs), "
                             "got %d. Hint: Each label needs a value." % (kind.word, len(items)))
        return [emitter.list_item_formatted(as_text(items[i]), as_text(items[i + 1]))
                for i in range(0, len(items), 2)]
    texts = []
    for item in items:
        if isinstance(item, kind.placeholder):
            texts.append(_accumulated(item, accumulator))
        elif isinstance(item, ListItemPlaceholder):
            consumer = CONSUMER[type(item)]
            raise SomaRuntimeError(
                "%s encountered %s: its item belongs to %s. Did you mean to use %s "
                "instead of %s?" % (kind.word, type(item).__name__, consumer,
                                    consumer.split(" or ")[0], kind.word))
        else:
            texts.append(as_text(item))
    return texts


def _saved_item_text(item, accumulator):
    # A saved level resolves any placeholder against the accumulator of the closing kind.
    if isinstance(item, ListItemPlaceholder):
        return _accumulated(item, accumulator)
    return as_text(item)


def _indented_lines(kind, texts, depth, first_number=1):
    indent = "  " * depth
    if kind.ordered:
        return ["%s%d. %s\n" % (indent, n, text)
                for n, text in enumerate(texts, first_number)]
    return ["%s- %s\n" % (indent, text) for text in texts]


def _emit(kind, emitter, texts, depth):
    if kind.ordered:
        return emitter.ordered_list(texts, depth)
    return emitter.unordered_list(texts, depth)


def render_list(kind, items, depth, stack, accumulator, emitter):
    """Render a list word's drained `items` at nesting `depth`.

    Returns (text to append to the document, new depth, new nesting stack).
    """
    texts = resolve_items(kind, items, accumulator, emitter)
    if not isinstance(stack, list) or not stack:
        return _emit(kind, emitter, texts, 0), depth, []
    structural = emitter.can_concat_lists()
    level = stack[-1].depth
    if depth > level:
        # A nested list closes: its text waits on the enclosing level.
        if structural:
            nested = _emit(kind, emitter, texts, depth)
        else:
            nested = "".join(_indented_lines(kind, texts, depth))
        stack[-1].nested_text += nested
        return "", level, stack
    # The list at the saved level closes: its saved items, their nested text, its own items.
    closing = [saved for saved in stack if saved.depth == level]
    remaining = [saved for saved in stack if saved.depth != level]
    if structural:
        all_texts = []
        for saved in closing:
            nested = saved.nested_text
            for item in saved.items:
                text = _saved_item_text(item, saved.accumulators[kind.accumulator])
                all_texts.append(text + nested)
                nested = ""
        all_texts.extend(texts)
        text = _emit(kind, emitter, all_texts, level)
    else:
        parts = []
        numbered = 0    # items so far: numbering runs on across saved levels
        for saved in closing:
            saved_texts = [_saved_item_text(item, saved.accumulators[kind.accumulator])
                           for item in saved.items]
            parts.extend(_indented_lines(kind, saved_texts, level, numbered + 1))
            numbered += len(saved_texts)
            if saved.nested_text:
                parts.append(saved.nested_text)
        parts.extend(_indented_lines(kind, texts, level, numbered + 1))
        text = "".join(parts)
    if remaining:
        remaining[-1].nested_text += text
        return "", remaining[-1].depth, remaining
    if not structural:
        text += "\n"
    return text, 0, remaining
