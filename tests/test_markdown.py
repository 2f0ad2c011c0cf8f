"""The `markdown` extension: every md.* word, both emitters and their options.

Programs run on the tier SOMA_JIT selects (scripts/test-all.sh runs this file on each).
Expected texts were checked against the reference VM's output for the same programs.
"""

import pytest

import soma
from soma.extensions.markdown_emitter import (
    ESCAPED_TAG, HtmlEmitter, MarkdownEmitter, is_tagged, strip_all_tags, tag, untag)
from soma.extensions.markdown_lists import (
    DliPlaceholder, OliPlaceholder, UliPlaceholder)
from soma.values import VOID


def new_vm():
    lines = []
    vm = soma.VM(output=lines.append)
    vm.execute_code("(markdown) >use >md.start")
    return vm, lines


def doc(body, html=False):
    """The text >md.print writes for a document with `body`."""
    vm, lines = new_vm()
    if html:
        vm.execute_code("md.htmlEmitter >md.emitter")
    vm.execute_code(body + "\n>md.print")
    assert len(lines) == 1
    return lines[0]


# -- block words ----------------------------------------------------------------

def test_headings_join_their_items_with_spaces():
    assert doc("(My) (Title) >md.h1 (Two) >md.h2 (Three) >md.h3 (Four) >md.h4") == (
        "# My Title\n\n## Two\n\n### Three\n\n#### Four\n\n")


def test_each_paragraph_item_is_a_paragraph():
    assert doc("(first) (second) >md.p") == "first\n\nsecond\n\n"


def test_blockquote_lines():
    assert doc("(one) (two) >md.q") == "> one\n> two\n\n"


@pytest.mark.parametrize("language,fence", [("(py)", "```py"), ("Nil", "```"), ("()", "```")])
def test_code_block_language_option(language, fence):
    assert doc("(a = 1) (b = 2) %s >md.code" % language) == fence + "\na = 1\nb = 2\n```\n\n"


def test_horizontal_rule_takes_no_items():
    assert doc("(a) >md.p >md.hr (b) >md.p") == "a\n\n---\n\nb\n\n"


def test_block_words_leave_two_voids_where_there_was_one():
    vm, _ = new_vm()
    vm.execute_code("(T) >md.h1")
    assert vm.al == [VOID, VOID]
    vm.execute_code("(p) >md.p")
    assert vm.al == [VOID, VOID, VOID]
    vm.execute_code(">md.hr")
    assert vm.al == [VOID, VOID, VOID, VOID]


# -- inline words -----------------------------------------------------------------

def test_inline_formatting_and_text():
    assert doc("(see ) (x) >md.c (, ) (b) >md.b ( and ) (i) >md.i >md.t >md.p") == (
        "see `x`, **b** and _i_\n\n")


def test_link():
    assert doc("(see) (http://x.org) >md.l (docs) >md.t >md.p") == (
        "[see](http://x.org)docs\n\n")


def test_md_t_leaves_the_joined_str_above_the_void():
    vm, _ = new_vm()
    vm.execute_code("(a) (b) >md.t")
    assert vm.al == [VOID, "ab"]


def test_inline_word_on_void_leaves_what_the_reference_leaves():
    # `(x) >md.p >md.b` formats the Void md.p left: the reference's call fails and
    # leaves Void, the emitter and Void.
    vm, _ = new_vm()
    vm.execute_code("(x) >md.p >md.b")
    emitter = vm.store.read_value(["md", "state", "emitter"])
    assert vm.al == [VOID, VOID, emitter, VOID]


def test_inline_words_format_any_value_as_text():
    vm, _ = new_vm()
    vm.execute_code("5 >md.b Nil >md.c")
    assert vm.al == [VOID, "**5**", "`Nil`"]


# -- lists ----------------------------------------------------------------------

def test_unordered_and_ordered_lists_of_plain_items():
    assert doc("(a) (b) >md.ul (x) (y) >md.ol") == "- a\n- b\n\n1. x\n2. y\n\n"


def test_list_items_built_from_pieces():
    assert doc("(see ) (f) >md.c >md.uli (plain) >md.uli >md.ul") == "- see `f`\n- plain\n\n"
    assert doc("(one) >md.oli (two) >md.oli >md.ol") == "1. one\n2. two\n\n"


def test_nested_unordered_list():
    body = ("(A) >md.uli (B) >md.uli >md.nest (B1) >md.uli (B2) >md.uli >md.ul "
            "(C) >md.uli >md.ul")
    assert doc(body) == "- A\n- B\n  - B1\n  - B2\n- C\n\n"


def test_unordered_list_nested_in_an_ordered_one():
    assert doc("(One) >md.oli >md.nest (x) (y) >md.ul (Two) >md.oli >md.ol") == (
        "1. One\n  - x\n  - y\n2. Two\n\n")


def test_nested_html_list_goes_inside_the_item():
    body = "(A) >md.uli >md.nest (B1) >md.uli >md.ul (C) >md.uli >md.ul"
    assert doc(body, html=True) == (
        "<ul>\n  <li>A<ul>\n  <li>B1</li>\n</ul>\n</li>\n  <li>C</li>\n</ul>\n")


def test_definition_items_and_pairs():
    body = ("(Term) (def ) (it) >md.b >md.dli (Other) (plain) >md.dli >md.dul "
            "(K) (V) (K2) (V2) >md.dol")
    assert doc(body) == ("- **Term**: def **it**\n- **Other**: plain\n\n"
                         "1. **K**: V\n2. **K2**: V2\n\n")


def test_data_title_and_definition_pairs():
    assert doc("(a) (b) (c) (d) >md.dt >md.p (x) (1) (y) (2) >md.dl >md.ul") == (
        "**a** b **c** d\n\n- **x**: 1\n- **y**: 2\n\n")


def test_placeholders_and_accumulators():
    vm, _ = new_vm()
    vm.execute_code("(a) >md.uli (b) >md.oli (L) (v) >md.dli")
    top = vm.al[-3:]
    assert [type(p) for p in top] == [UliPlaceholder, OliPlaceholder, DliPlaceholder]
    assert [p.index for p in top] == [0, 0, 0]
    assert vm.store.read_value(["md", "state", "uli", "items"]) == ["a"]
    assert vm.store.read_value(["md", "state", "dli", "items"]) == ["**L**: v"]


# -- tables -----------------------------------------------------------------------

def test_table_with_alignment_and_a_short_row():
    body = ("(Name) (Age) >md.table.header >md.table.left >md.table.right >md.table.align "
            "(Alice) (30) >md.table.row (Bob) >md.table.row >md.table")
    assert doc(body) == (
        "| Name  | Age |\n|:------|----:|\n| Alice | 30  |\n| Bob   |     |\n\n")


def test_table_centre_alignment_is_a_plain_marker_on_wide_columns():
    body = ("(Col) (Center wide) (R) >md.table.header "
            ">md.table.centre >md.table.centre >md.table.right >md.table.align "
            "(a) (b) (c) >md.table.row >md.table")
    assert doc(body) == ("| Col | Center wide | R |\n|:---:|:---:|--:|\n"
                         "| a   | b           | c |\n\n")


def test_html_table_styles_and_extra_cells():
    body = ("(H) (Two) >md.table.header >md.table.centre () >md.table.align "
            "(x) (y) (extra) >md.table.row >md.table")
    assert doc(body, html=True) == (
        '<table>\n<thead>\n<tr><th style="text-align: center">H</th><th>Two</th></tr>\n'
        '</thead>\n<tbody>\n<tr><td style="text-align: center">x</td><td>y</td>'
        "<td>extra</td></tr>\n</tbody>\n</table>\n")


def test_table_state_is_cleared():
    assert doc("(A) >md.table.header (1) >md.table.row >md.table >md.table") == (
        "| A |\n|---|\n| 1 |\n\n")


# -- the HTML emitter through SOMA --------------------------------------------------

def test_html_escapes_raw_text_once():
    body = ('(a < b & "c") >md.p (x) >md.b ( & y) >md.t >md.p (q <1>) >md.q '
            "(if a < b) (x) >md.code (T) (x) >md.i >md.h2")
    assert doc(body, html=True) == (
        "<p>a &lt; b &amp; &quot;c&quot;</p>\n<p><strong>x</strong> &amp; y</p>\n"
        "<blockquote>\n<p>q &lt;1&gt;</p>\n</blockquote>\n"
        '<pre><code class="language-x">if a &lt; b\n</code></pre>\n<h2>T <i>x</i></h2>\n')


def test_switching_emitters_mid_document():
    assert doc("(a) >md.b >md.p md.htmlEmitter >md.emitter (b) >md.b >md.p "
               "md.mdEmitter >md.emitter >md.hr") == "**a**\n\n<p><strong>b</strong></p>\n---\n\n"


# -- output ----------------------------------------------------------------------

def test_print_starts_a_new_document():
    vm, lines = new_vm()
    vm.execute_code("(one) >md.p >md.print (two) >md.p >md.print")
    assert lines == ["one\n\n", "two\n\n"]


def test_render_writes_the_file_without_markers(tmp_path):
    out = tmp_path / "doc.html"
    vm, lines = new_vm()
    vm.execute_code("md.htmlEmitter >md.emitter (x) >md.b >md.p (%s) >md.render" % out)
    assert out.read_text() == "<p><strong>x</strong></p>\n"
    assert lines == []
    assert vm.store.read_value(["md", "state", "doc"]) == ""


# -- errors ------------------------------------------------------------------------

def test_placeholder_among_paragraph_items_is_an_error_with_position():
    vm, _ = new_vm()
    with pytest.raises(soma.RuntimeError) as info:
        vm.execute_code("(a) >md.uli\n  >md.p")
    assert (info.value.line, info.value.col) == (2, 3)
    assert ">md.p encountered UliPlaceholder" in info.value.message
    assert isinstance(info.value, RuntimeError)   # also Python's, as the reference's callers expect


def test_unconsumed_list_items_stop_print():
    vm, lines = new_vm()
    with pytest.raises(soma.RuntimeError, match="unconsumed OliPlaceholder"):
        vm.execute_code("(a) >md.oli >md.print")
    assert lines == []


def test_wrong_list_word_for_the_placeholder():
    vm, _ = new_vm()
    with pytest.raises(soma.RuntimeError, match="Did you mean to use >md.ol instead of >md.ul"):
        vm.execute_code("(a) >md.oli >md.ul")


def test_text_words_refuse_non_strs_with_a_type_error():
    vm, _ = new_vm()
    with pytest.raises(TypeError) as info:
        vm.execute_code("(a) - >md.t")
    assert "requires string items, got BuiltinBlock" in str(info.value)
    assert (info.value.soma_line, info.value.soma_col) == (1, 7)


@pytest.mark.parametrize("word", ["md.dt", "md.dl", "md.dul"])
def test_pairs_need_an_even_count(word):
    vm, _ = new_vm()
    with pytest.raises(ValueError, match="even number of items"):
        vm.execute_code("(a) (b) (c) >" + word)


def test_definition_item_needs_a_label_and_a_value():
    vm, _ = new_vm()
    with pytest.raises(soma.RuntimeError, match="requires at least label and value"):
        vm.execute_code("(only) >md.dli")


def test_vm_usable_after_an_error():
    vm, lines = new_vm()
    with pytest.raises(TypeError):
        vm.execute_code("5 >md.h1")
    assert vm.al == [VOID]          # the bad item is popped, the Void below it is not
    vm.execute_code("(ok) >md.p >md.print")
    assert lines == ["ok\n\n"]


# -- the emitter classes -------------------------------------------------------------

def test_markdown_emitter_methods():
    e = MarkdownEmitter()
    assert (e.bold("b"), e.italic("i"), e.code("c"), e.link("t", "u")) == (
        "**b**", "_i_", "`c`", "[t](u)")
    assert e.heading3("h") == "### h\n\n"
    assert e.paragraph([]) == "" and e.blockquote([]) == ""
    assert e.unordered_list([], 0) == "\n\n" and e.unordered_list([], 1) == ""
    assert e.ordered_list(["a", "b"], 1) == "  1. a\n  2. b\n"
    assert e.code_block(["x"], "sh") == "```sh\nx\n```\n\n"
    assert e.concat(["a", "b"]) == "ab" and e.join(["a", "b"], ", ") == "a, b"
    assert e.list_item_formatted("L", "v") == "**L**: v"
    assert e.data_title(["a", "1"]) == "**a** 1"
    with pytest.raises(ValueError):
        e.data_title(["odd"])
    assert e.can_concat_lists() is False
    assert e.table([], [], None) == ""
    assert e.table(["Wide column"], [["x"]], ["centre"]) == (
        "| Wide column |\n|:---:|\n| x           |\n\n")
    assert e.table(["A"], [["x"]], ["center"]) == "| A |\n|:-:|\n| x |\n\n"


def test_html_emitter_methods_and_markers():
    e = HtmlEmitter()
    bold = e.bold("a<b")
    assert is_tagged(bold) and untag(bold) == "<strong>a&lt;b</strong>"
    assert untag(e.italic(bold)) == "<i><strong>a&lt;b</strong></i>"
    assert untag(e.link("x", 'u"v')) == '<a href="u&quot;v">x</a>'
    assert e.heading1("T&") == "<h1>T&amp;</h1>\n"
    assert e.horizontal_rule() == "<hr>\n"
    assert e.ordered_list([], 0) == "<ol>\n</ol>\n"
    assert e.unordered_list(["a", bold], 3) == (
        "<ul>\n  <li>a</li>\n  <li><strong>a&lt;b</strong></li>\n</ul>\n")
    assert e.code_block(["<x>"]) == "<pre><code>&lt;x&gt;\n</code></pre>\n"
    assert untag(e.join(["a", "<"], " & ")) == "a & &lt;"
    assert untag(e.data_title(["k", "v"])) == "<strong>k</strong> v"
    assert untag(e.list_item_formatted("k", "v")) == "<strong>k</strong>: v"
    assert e.can_concat_lists() is True
    assert e.table(["h"], [["1"]], ["right"]) == (
        '<table>\n<thead>\n<tr><th style="text-align: right">h</th></tr>\n</thead>\n'
        '<tbody>\n<tr><td style="text-align: right">1</td></tr>\n</tbody>\n</table>\n')


def test_marker_helpers():
    assert tag(tag("x")) == ESCAPED_TAG + "x"
    assert untag("x") == "x"
    assert strip_all_tags("a" + ESCAPED_TAG + "b" + ESCAPED_TAG) == "ab"


def test_a_python_emitter_object_can_replace_the_emitter():
    class Shouting(MarkdownEmitter):
        def bold(self, text):
            return text.upper() + "!"

    vm, lines = new_vm()
    vm.store.write_value(["md", "state", "emitter"], Shouting())
    vm.execute_code("(hey) >md.b >md.p >md.print")
    assert lines == ["HEY!\n\n"]


def test_non_str_items_are_text_the_same_way_on_every_tier():
    assert doc("5 Nil True >md.p { 1 } print >md.ul") == (
        "5\n\nNil\n\nTrue\n\n- Block(body=[RunNode(IntNode)])\n- <builtin print>\n\n")


def test_render_to_an_unwritable_path_reports_and_goes_on(tmp_path):
    vm, lines = new_vm()
    vm.execute_code("(x) >md.p (%s) >md.render 7" % tmp_path)   # a directory: open fails
    assert lines[0] == "Error writing markdown file: "
    assert lines[1].startswith("IsADirectoryError(")
    assert vm.al[-1] == 7
    assert vm.store.read_value(["md", "state", "doc"]) == "x\n\n"   # kept, not reset
