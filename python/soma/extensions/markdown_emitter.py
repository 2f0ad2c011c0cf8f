"""The output formats of the `markdown` extension: `MarkdownEmitter` and `HtmlEmitter`.

An emitter turns document pieces into text. Both classes have the same methods, so the
extension's words work with either (`md.mdEmitter >md.emitter`, `md.htmlEmitter
>md.emitter`), and a Python program may pass its own object with these methods:

    inline   bold(t) italic(t) code(t) link(text, url)
    blocks   heading1..heading4(t) paragraph(items) blockquote(items) horizontal_rule()
             code_block(lines, language=None) table(header, rows, alignment=None)
    lists    unordered_list(items, depth=0) ordered_list(items, depth=0)
             list_item_formatted(label, value) can_concat_lists()
    text     concat(items) join(items, separator) data_title(items)

Inline methods return text with no newline; block methods end their text with a newline
(Markdown adds a blank line).

Escaping in HTML. Raw text is HTML-escaped (`&`, `<`, `>`, `"`). Text an HtmlEmitter has
already produced (a `<strong>` span, a joined line) must not be escaped again, so such
text starts with the marker ESCAPED_TAG (U+100000, a private-use code point that plain
text does not contain): an emitter input that starts with the marker is used as it is
(marker removed), anything else is escaped. `strip_all_tags` removes every marker from
the finished document. The Markdown emitter neither escapes nor marks.
"""

ESCAPED_TAG = "\U00100000"


def is_tagged(text):
    """Whether `text` is marked as already-escaped output."""
    return text.startswith(ESCAPED_TAG)


def tag(text):
    """`text` marked as already escaped (marking twice changes nothing)."""
    return text if text.startswith(ESCAPED_TAG) else ESCAPED_TAG + text


def untag(text):
    """`text` without its leading marker, if it has one."""
    return text[len(ESCAPED_TAG):] if text.startswith(ESCAPED_TAG) else text


def strip_all_tags(text):
    """`text` with every marker removed (done once, on the finished document)."""
    return text.replace(ESCAPED_TAG, "")


def _pairs_required(items):
    if len(items) % 2:
        raise ValueError("data_title needs label/value pairs (an even number of items), "
                         "got %d item(s)" % len(items))


class MarkdownEmitter:
    """Markdown text: `**bold**`, `_italic_`, `# heading`, `- item`, pipe tables."""

    def bold(self, text):
        return "**%s**" % text

    def italic(self, text):
        return "_%s_" % text

    def code(self, text):
        return "`%s`" % text

    def link(self, text, url):
        return "[%s](%s)" % (text, url)

    def _heading(self, level, text):
        return "%s %s\n\n" % ("#" * level, text)

    def heading1(self, text):
        return self._heading(1, text)

    def heading2(self, text):
        return self._heading(2, text)

    def heading3(self, text):
        return self._heading(3, text)

    def heading4(self, text):
        return self._heading(4, text)

    def paragraph(self, items):
        """Each item is its own paragraph."""
        return "".join("%s\n\n" % item for item in items)

    def blockquote(self, items):
        """Each item is one `> ` line; a blank line ends the quote."""
        if not items:
            return ""
        return "".join("> %s\n" % item for item in items) + "\n"

    def horizontal_rule(self):
        return "---\n\n"

    def _list(self, items, depth, marker):
        # Two spaces of indent per depth; only a top-level list ends with a blank line.
        end = "\n" if depth == 0 else ""
        if not items:
            return end + end
        indent = "  " * depth
        return "".join("%s%s%s\n" % (indent, marker(n), item)
                       for n, item in enumerate(items, 1)) + end

    def unordered_list(self, items, depth=0):
        return self._list(items, depth, lambda n: "- ")

    def ordered_list(self, items, depth=0):
        return self._list(items, depth, lambda n: "%d. " % n)

    def list_item_formatted(self, label, value):
        """A definition item: bold label, colon, value."""
        return "**%s**: %s" % (label, value)

    def code_block(self, lines, language=None):
        return "```%s\n%s```\n\n" % (language or "", "".join("%s\n" % ln for ln in lines))

    def concat(self, items):
        return "".join(items)

    def join(self, items, separator):
        return separator.join(items)

    def data_title(self, items):
        """Pairs as `**label** value`, all joined by spaces."""
        _pairs_required(items)
        return " ".join(self.bold(item) if n % 2 == 0 else item
                        for n, item in enumerate(items))

    def can_concat_lists(self):
        """False: a nested Markdown list is placed by indentation, not by nesting text."""
        return False

    def table(self, header, rows, alignment=None):
        """A pipe table, columns padded to their widest cell; `alignment` per column is
        "left", "centre" (or "center"), "right" or anything else for none."""
        if not header:
            return ""
        columns = len(header)
        widths = [len(str(cell)) for cell in header]
        for row in rows or ():
            if isinstance(row, list):
                for i, cell in enumerate(row[:columns]):
                    widths[i] = max(widths[i], len(str(cell)))
        out = ["| ", " | ".join(str(c).ljust(widths[i]) for i, c in enumerate(header)),
               " |\n|"]
        for i, width in enumerate(widths):
            align = alignment[i] if alignment and i < len(alignment) else None
            out.append(_separator_cell(align, width) + "|")
        out.append("\n")
        for row in rows or ():
            if isinstance(row, list):
                cells = [str(row[i]).ljust(w) if i < len(row) else " " * w
                         for i, w in enumerate(widths)]
                out.append("| %s |\n" % " | ".join(cells))
        out.append("\n")
        return "".join(out)


def _separator_cell(align, width):
    """The dashes under one column: as wide as the padded cell (width + 2), except that
    a centred column wider than 3 characters gets a plain `:---:`."""
    span = width + 2
    if align == "left":
        return ":" + "-" * (span - 1)
    if align in ("centre", "center"):
        return ":" + "-" * (span - 2) + ":" if span <= 5 else ":---:"
    if align == "right":
        return "-" * (span - 1) + ":"
    return "-" * span


class HtmlEmitter:
    """HTML: `<strong>`, `<i>`, `<code>`, `<h1>`, `<ul><li>`, `<table>`.

    Inline results are marked (see the module docstring) so that nesting them does not
    escape twice; block results are plain text.
    """

    def _escape_html(self, text):
        return (str(text).replace("&", "&amp;").replace("<", "&lt;")
                .replace(">", "&gt;").replace('"', "&quot;"))

    def _process_text(self, text):
        """Marked text as it is (marker dropped), raw text escaped."""
        if text.startswith(ESCAPED_TAG):
            return text[len(ESCAPED_TAG):]
        return self._escape_html(text)

    def _wrap(self, element, text):
        return "<%s>%s</%s>" % (element, self._process_text(text), element)

    def bold(self, text):
        return tag(self._wrap("strong", text))

    def italic(self, text):
        return tag(self._wrap("i", text))

    def code(self, text):
        return tag(self._wrap("code", text))

    def link(self, text, url):
        return tag('<a href="%s">%s</a>' % (self._escape_html(url), self._process_text(text)))

    def heading1(self, text):
        return self._wrap("h1", text) + "\n"

    def heading2(self, text):
        return self._wrap("h2", text) + "\n"

    def heading3(self, text):
        return self._wrap("h3", text) + "\n"

    def heading4(self, text):
        return self._wrap("h4", text) + "\n"

    def paragraph(self, items):
        return "".join(self._wrap("p", item) + "\n" for item in items)

    def blockquote(self, items):
        # Quote lines are escaped as given, marked or not (the marker itself is removed
        # with the others when the document is finished).
        if not items:
            return ""
        body = "".join("<p>%s</p>\n" % self._escape_html(item) for item in items)
        return "<blockquote>\n%s</blockquote>\n" % body

    def horizontal_rule(self):
        return "<hr>\n"

    def _list(self, element, items):
        body = "".join("  %s\n" % self._wrap("li", item) for item in items)
        return "<%s>\n%s</%s>\n" % (element, body, element)

    def unordered_list(self, items, depth=0):
        """`depth` is accepted for the common interface; HTML nests by structure."""
        return self._list("ul", items)

    def ordered_list(self, items, depth=0):
        return self._list("ol", items)

    def list_item_formatted(self, label, value):
        return tag("%s: %s" % (self._wrap("strong", label), self._process_text(value)))

    def code_block(self, lines, language=None):
        if language:
            start = '<pre><code class="language-%s">' % self._escape_html(language)
        else:
            start = "<pre><code>"
        body = "".join(self._escape_html(line) + "\n" for line in lines)
        return start + body + "</code></pre>\n"

    def concat(self, items):
        return tag("".join(self._process_text(item) for item in items))

    def join(self, items, separator):
        """The separator goes in as it is (it is punctuation, not text to escape)."""
        return tag(separator.join(self._process_text(item) for item in items))

    def data_title(self, items):
        _pairs_required(items)
        return tag(" ".join(self._wrap("strong", item) if n % 2 == 0
                            else self._process_text(item)
                            for n, item in enumerate(items)))

    def can_concat_lists(self):
        """True: a nested HTML list is text placed inside its parent's `<li>`."""
        return True

    def table(self, header, rows, alignment=None):
        """`<table>` with a `<thead>` row and a `<tbody>`; an alignment becomes a
        `text-align` style ("centre" is written "center")."""
        if not header:
            return ""

        def cell(element, i, text):
            style = ""
            if alignment and i < len(alignment) and alignment[i]:
                align = "center" if alignment[i] == "centre" else alignment[i]
                style = ' style="text-align: %s"' % align
            return "<%s%s>%s</%s>" % (element, style, self._process_text(text), element)

        out = ["<table>\n<thead>\n<tr>"]
        out.extend(cell("th", i, text) for i, text in enumerate(header))
        out.append("</tr>\n</thead>\n<tbody>\n")
        for row in rows:
            out.append("<tr>")
            out.extend(cell("td", i, text) for i, text in enumerate(row))
            out.append("</tr>\n")
        out.append("</tbody>\n</table>\n")
        return "".join(out)
