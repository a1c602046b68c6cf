"""tree-sitter-rust analysis of hand-written Rust: items, owners, docs, imports, errors,
references, and incremental parses that agree with parses from scratch."""

import random
import re

import pytest

from pipeline.rust.parsing import (RecentParses, _hunk_edits, _renamed_macros,
                                   common_prefix, common_suffix, parse)
from pipeline.rust.references import item_references
from pipeline.rust.syntax import analyse, inline_scope

SOURCE = b'''//! Crate docs stay with the file.
use std::{fmt::{self, Display}, io::*};
use crate::net::Peer as Remote;

/// A point.
#[derive(Debug, Clone)]
pub struct Point<T> { x: T }

pub enum Shape { Circle, Square }

impl<T: Clone> Display for Point<T> where T: Copy {
    /// Formats.
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result { write!(f, "p") }
}

pub trait Area { fn area(&self) -> f64; fn twice(&self) -> f64 { 2.0 * self.area() } }

type Pair = (u8, u8);
const LIMIT: usize = 3;
static NAME: &str = "n";
macro_rules! square { ($x:expr) => { $x * $x }; }
lazy_static! { static ref X: u8 = 1; }
mod inner { pub fn helper() -> Remote { todo!() } }
mod outer;
pub fn gr\xc3\xbc\xc3\x9fe(s: &str) -> &str { "\xe2\x9c\x93" }
'''


def by_qualname(analysis):
    return {item["qualname"]: item for item in analysis["items"]}


def references(source: bytes) -> dict:
    """qualname -> the references of that item."""
    file = parse(source)
    items = analyse(file)["items"]
    return {item["qualname"]: item_references(file, index) for index, item in enumerate(items)}


def test_every_item_kind_with_owner_and_qualified_name():
    items = by_qualname(analyse(SOURCE))
    assert items["Point"]["kind"] == "struct" and items["Shape"]["kind"] == "enum"
    assert items["impl Display for Point<T>"]["kind"] == "impl"
    method = items["impl Display for Point<T>::fmt"]
    assert method["kind"] == "method" and method["owner"] == "impl Display for Point<T>"
    assert items["trait Area::twice"]["kind"] == "method"
    assert items["Area"]["kind"] == "trait"
    assert items["Pair"]["kind"] == "type"
    assert items["LIMIT"]["kind"] == "const" and items["NAME"]["kind"] == "static"
    assert items["square"]["kind"] == "macro_rules"
    assert items["lazy_static!"]["kind"] == "macro_call"
    assert items["inner"]["kind"] == "mod" and items["inner::helper"]["kind"] == "fn"
    assert items["outer"]["kind"] == "mod"
    assert items["grüße"]["kind"] == "fn"


def test_doc_comments_and_attributes_belong_to_the_item_they_precede():
    item = by_qualname(analyse(SOURCE))["Point"]
    text = SOURCE[item["start_byte"]:item["end_byte"]]
    assert text.startswith(b"/// A point.\n#[derive(Debug, Clone)]\npub struct Point")
    assert item["start_line"] == 5 and item["end_line"] == 7
    method = by_qualname(analyse(SOURCE))["impl Display for Point<T>::fmt"]
    assert SOURCE[method["start_byte"]:method["end_byte"]].startswith(b"/// Formats.")


def header(source: bytes, item: dict) -> str:
    """The item's text before its body, whitespace squashed (docs and attributes included)."""
    return " ".join(source[item["start_byte"]:item["body_start"]].decode().split())


def test_headers_stop_at_the_body_and_references_are_collected():
    items = by_qualname(analyse(SOURCE))
    assert header(SOURCE, items["impl Display for Point<T>::fmt"]) == \
        "/// Formats. fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result"
    assert header(SOURCE, items["inner::helper"]) == "pub fn helper() -> Remote"
    refs = references(SOURCE)
    assert refs["inner::helper"] == {
        "type": ["Remote"], "call": [], "macro": ["todo"], "const": []}
    assert "fmt::Formatter" in refs["impl Display for Point<T>::fmt"]["type"]
    assert refs["LIMIT"]["const"] == [] and refs["Pair"]["const"] == []


def test_references_in_macro_arguments_are_read_from_their_tokens():
    """tree-sitter leaves a macro's arguments as tokens: cargo's tests were whole
    `test!(name { ... })` bodies, and every `assert_eq!(parse(x), ...)` hides its calls."""
    source = b"""fn check(limit: usize) {
    assert_eq!(parse(limit), Peer::new(3).id());
    let peers = vec![Peer { id: 1 }, io::Error::other(limit)];
    try!(util::load(limit).map(|p| p.run(MAX_LEN)));
    test!(builds_twice {
        let p = project("foo");
        assert_that(p.cargo("build"), execs().with_status(Code::Ok));
        fn helper() {}
        verify!(p);
    });
}
"""
    refs = references(source)["check"]
    # Not `id` or `run` (methods), `new` and `other` (associated functions), `Error` and
    # `Ok` (a path's tail), `helper` (defined there), `builds_twice` (the test's name).
    assert refs == {"type": ["Code", "Peer"],
                    "call": ["assert_that", "execs", "parse", "project", "util::load"],
                    "macro": ["assert_eq", "test", "try", "vec", "verify"],
                    "const": ["MAX_LEN"]}


def test_references_leave_out_generic_parameters_and_bound_locals():
    source = b"""impl<T: Clone> Matcher for Regex<T> {
    fn find<F, E>(&self, mut matched: F) -> Result<(), E> where F: FnMut(Match) -> bool {
        let limit = MAX_LEN;
        let (a, b) = (1, 2);
        let each = |item| item;
        let kept: Vec<T> = Vec::new();
        matched(Match::new(a, b)); each(1); compute(limit); println!("{}", limit);
        util::parse(limit); Self::helper(); net::Peer::connect(); self::local();
        Ok(())
    }
    fn other(&self, compute: usize) {}
}
"""
    refs = references(source)["impl Matcher for Regex<T>::find"]
    # `Match::new` and `net::Peer::connect` are associated functions: their types, never a
    # free `fn new` or `fn connect`; `util::parse` and `self::local` are free functions.
    # Names written with a path keep it: they are resolved through it. What another method
    # binds (`compute`) is no local of this one; the impl's `T` is.
    assert refs == {"type": ["FnMut", "Match", "Result", "Vec", "net::Peer"],
                    "call": ["Ok", "compute", "self::local", "util::parse"],
                    "macro": ["println"], "const": ["MAX_LEN"]}


def test_use_trees_are_flattened_to_full_paths():
    imports = analyse(SOURCE)["imports"]
    assert ["std::fmt", "fmt", ""] in imports
    assert ["std::fmt::Display", "Display", ""] in imports
    assert ["std::io::*", "*", ""] in imports
    assert ["crate::net::Peer", "Remote", ""] in imports


def test_syntax_errors_and_bad_bytes_are_flagged_not_fatal():
    broken = analyse(b"fn a() {\n    let x = 1;\n<<<<<<< HEAD\n")
    assert broken["has_error"]
    garbage = analyse(b"\x00\xff\xfe fn \x00 struct {{{")
    assert garbage["has_error"] and garbage["decode_errors"]
    assert not analyse(SOURCE)["has_error"] and not analyse(SOURCE)["decode_errors"]


def test_screaming_case_constants_are_identifiers_not_strings_comments_or_longer_names():
    source = """fn f() -> u8 {
    // MAX_IN_COMMENT
    let s = "MAX_IN_STRING";
    let r#KEYWORD = 1;
    let ÄBC_DEF = 2;
    MAX_LEN + Limits::UPPER + take(BUFFER_SIZE) + r#KEYWORD + X
}
""".encode()
    assert references(source)["f"]["const"] == ["BUFFER_SIZE", "MAX_LEN", "UPPER"]


# Versions of one file as a history would bring them: an edit inside a body, a new item, a
# syntax error and its fix, a `try!` (parsed under another name), a removal.
VERSIONS = [
    SOURCE,
    SOURCE.replace(b'write!(f, "p")', b'write!(f, "point {}", LIMIT)'),
    SOURCE.replace(b"pub enum Shape { Circle, Square }",
                   b"pub enum Shape { Circle, Square }\n\nfn added(p: Point<u8>) -> Shape {"
                   b" helper(p) }"),
    SOURCE.replace(b"pub enum Shape { Circle, Square }", b"pub enum Shape { Circle, Square"),
    SOURCE.replace(b"type Pair = (u8, u8);", b"fn read() -> u8 { try!(parse(MAX)) }"),
    SOURCE.replace(b"mod inner { pub fn helper() -> Remote { todo!() } }\n", b""),
    SOURCE,
    SOURCE.replace(b"//! Crate docs", b"//! The crate's docs").replace(b"const LIMIT",
                                                                      b"pub const LIMIT"),
]


def facts(file):
    """Everything the chunker reads from a parse: the analysis and every item's references."""
    analysis = analyse(file)
    return analysis, [item_references(file, i) for i in range(len(analysis["items"]))]


def test_incremental_parses_agree_with_parses_from_scratch_version_after_version():
    recent = RecentParses()
    for number, version in enumerate(VERSIONS):
        incremental, fresh = recent.parse("src/lib.rs", version), parse(version)
        assert str(incremental.tree.root_node) == str(fresh.tree.root_node), number
        assert facts(incremental) == facts(fresh), number
    assert analyse(recent.parse("src/lib.rs", VERSIONS[3]))["has_error"]


def test_changed_lines_become_one_edit_each_and_the_last_line_one_span():
    edits = _hunk_edits(VERSIONS[0], VERSIONS[-1])
    assert len(edits) == 2 and edits[0]["start_byte"] > edits[1]["start_byte"]    # last first
    assert _hunk_edits(b"fn a() {}\nfn b() {}", b"fn a() {}\nfn c() {}") is None


def test_common_prefix_and_suffix_of_bytes_and_lists_are_the_longest():
    rng = random.Random(7)
    for _ in range(2000):
        old = bytes(rng.choices(b"ab\n", k=rng.randrange(0, 12)))
        new = bytes(rng.choices(b"ab\n", k=rng.randrange(0, 12)))
        for a, b in ((old, new), (old.split(b"\n"), new.split(b"\n"))):
            head = max(k for k in range(min(len(a), len(b)) + 1) if a[:k] == b[:k])
            tail = max(k for k in range(min(len(a), len(b)) + 1)
                       if a[len(a) - k:] == b[len(b) - k:])
            assert (common_prefix(a, b), common_suffix(a, b)) == (head, tail), (a, b)


def _applied(old: bytes, new: bytes, edits: list) -> bytes:
    """old with each edit's bytes replaced by new's at the same place (edits come last first,
    so an edit's new position is its old one moved by the edits before it in the file)."""
    out, cursor, moved = [], 0, 0
    for edit in reversed(edits):
        start = edit["start_byte"]
        assert cursor <= start and start == (old.rfind(b"\n", 0, start) + 1)  # a line start
        assert edit["start_point"] == (old.count(b"\n", 0, start), 0)
        assert edit["old_end_point"] == (old.count(b"\n", 0, edit["old_end_byte"]), 0)
        out += [old[cursor:start], new[start + moved:edit["new_end_byte"] + moved]]
        moved += edit["new_end_byte"] - edit["old_end_byte"]
        cursor = edit["old_end_byte"]
    return b"".join(out + [old[cursor:]])


def test_hunk_edits_describe_random_line_changes_exactly():
    rng = random.Random(15)
    lines = [b"fn a() {", b"}", b"", b"    x += 1;", b"    let y = f(x);", b"// note",
             b"struct S { long_field_name: u64 }", b"\tz", b"}}"]
    described = 0
    for _ in range(3000):
        old_lines = rng.choices(lines, k=rng.randrange(0, 30))
        new_lines = list(old_lines)
        for _ in range(rng.randrange(1, 4)):
            at = rng.randrange(len(new_lines) + 1)
            new_lines[at:at + rng.randrange(0, 3)] = rng.choices(lines, k=rng.randrange(0, 3))
        old, new = (b"\n".join(found) + rng.choice([b"", b"\n"])
                    for found in (old_lines, new_lines))
        edits = _hunk_edits(old, new)
        if edits is None:
            # Only where the changes reach the last line: it differs, or one version is
            # the other with lines added at its end.
            assert (old.rsplit(b"\n", 1)[-1] != new.rsplit(b"\n", 1)[-1]
                    or old.startswith(new) or new.startswith(old)), (old, new)
            continue
        described += 1
        assert _applied(old, new, edits) == new, (old, new)
    assert described > 1200


def test_recent_parses_reuse_a_known_version_and_stay_within_their_budget():
    recent = RecentParses(budget_bytes=3 * len(SOURCE))
    first = recent.parse("a.rs", SOURCE)
    assert recent.parse("a.rs", bytes(SOURCE)) is first
    renamed = recent.parse("b.rs", VERSIONS[1], base_path="a.rs")
    assert facts(renamed) == facts(parse(VERSIONS[1]))
    for name in ("c.rs", "d.rs", "e.rs"):
        recent.parse(name, SOURCE)
    assert recent.parse("a.rs", SOURCE) is not first        # evicted: parsed again
    assert recent.parse("f.rs", SOURCE, keep=False) is not recent.parse("f.rs", SOURCE)


def test_generics_lifetimes_unions_associated_items_and_nested_modules():
    source = b'''pub mod outer {
    pub mod inner {
        pub union Bits { int: u32, float: f32 }

        pub trait Walker<'a> {
            type Item: 'a;
            const DEPTH: usize = 2;
            fn step(&mut self) -> Option<Self::Item>;
        }

        impl<'a, T: Clone + 'a> Iterator for Walk<'a, T> where T: Send {
            type Item = &'a T;
            fn next(&mut self) -> Option<&'a T> { self.items.next() }
        }
    }
}
'''
    items = by_qualname(analyse(source))
    assert items["outer::inner::Bits"]["kind"] == "union"
    assert items["outer::inner::Bits"]["kind"] == "union"
    assert items["outer::inner::trait Walker::Item"]["kind"] == "type"
    assert items["outer::inner::trait Walker::DEPTH"]["kind"] == "const"
    assert items["outer::inner::trait Walker::step"]["kind"] == "method"
    method = items["outer::inner::impl Iterator for Walk<'a, T>::next"]
    assert method["owner"] == "impl Iterator for Walk<'a, T>"
    assert header(source, method) == "fn next(&mut self) -> Option<&'a T>"
    impl = items["outer::inner::impl Iterator for Walk<'a, T>"]
    assert header(source, impl) == \
        "impl<'a, T: Clone + 'a> Iterator for Walk<'a, T> where T: Send"
    assert items["outer::inner"]["parent"] == 0 and items["outer"]["parent"] == -1


@pytest.mark.parametrize("call, macros", [
    (b'try!(parse("1"))', ["try"]),                # 2015 edition: `try` is a keyword since
    (b'str![[r#"\n[COMPILING] foo\n"#]]', ["str"]),  # snapbox, as in cargo's tests
    (b"u8!(1) + usize! { 2 } + f64![3]", ["f64", "u8", "usize"]),   # any primitive's name
])
def test_macros_named_like_keywords_or_types_parse_and_keep_their_text(call, macros):
    source = b"fn read() -> io::Result<u8> {\n    let n = " + call + b";\n    Ok(n)\n}\n"
    analysis = analyse(source)
    assert not analysis["has_error"]
    (item,) = analysis["items"]
    assert item["name"] == "read"
    assert source[item["start_byte"]:item["end_byte"]].count(call) == 1
    assert references(source)["read"]["macro"] == macros
    # At a module's top level the invocation is an item, named as written.
    top = analyse(macros[0].encode() + b"! { x }\n")["items"]
    assert [item["name"] for item in top] == [macros[0] + "!"]


# What _renamed_macros must do, as one regex pass (the spec the fast version is checked by).
_RENAMED_BY_REGEX = re.compile(rb"\b(?:try|str|bool|char|[iu](?:8|16|32|64|128|size)|f32|f64)"
                               rb"(?=!\s*[(\[{])")


def test_macros_are_renamed_exactly_where_the_one_pass_regex_renames_them():
    pieces = [b"try", b"str", b"bool", b"char", b"u8", b"i128", b"usize", b"isize", b"f32",
              b"f64", b"u16", b"x", b"_", b"9", b"retry", b"astr", b"!", b"! ", b"!\n\t",
              b"(", b"[", b"{", b"}", b" ", b"\n", b"\r", b"\x0b", b"::", b"8", b"size", b"i",
              b"u", b"\xc3\xa9", b"!(", b"![", b"!{", b"16", b"32", b"64", b"128", b"e", b"y"]
    generator = random.Random(7)
    for _ in range(3000):
        source = b"".join(generator.choice(pieces) for _ in range(generator.randint(0, 30)))
        expected = _RENAMED_BY_REGEX.sub(lambda name: name.group()[:-1] + b"_", source)
        assert _renamed_macros(source) == expected, source


def test_an_import_records_the_inline_module_it_is_written_in():
    source = b'''use std::fmt;

pub fn top() {}

mod outer {
    use super::fmt::Write;

    mod tests {
        use super::*;

        fn check() {}
    }
}
'''
    analysis = analyse(source)
    assert analysis["imports"] == [["std::fmt", "fmt", ""],
                                   ["super::fmt::Write", "Write", "outer"],
                                   ["super::*", "*", "outer::tests"]]
    items = analysis["items"]
    scopes = {item["qualname"]: inline_scope(items, item) for item in items}
    assert scopes["top"] == "" and scopes["outer"] == ""
    assert scopes["outer::tests::check"] == "outer::tests"


def test_an_item_starts_at_the_plain_comments_right_above_it():
    source = (b"//! Module docs.\n"            # the module's: no item's
              b"// Why a exists.\n"             # right above a: a's
              b"fn a() {}\n\n"
              b"// A loose note.\n\n"          # a blank line below it: no item's
              b"fn b() {} // after b\n"        # after code on its line: no item's
              b"// Leads c,\n/// and its doc,\n#[inline]\nfn c() {}\n"
              b"// Not d's:\n\n/// Doc of d.\nfn d() {}\n")   # a blank line between
    items = {item["name"]: item for item in analyse(parse(source))["items"]}
    assert {name: item["start_line"] for name, item in items.items()} == {
        "a": 2, "b": 7, "c": 8, "d": 14}
