"""Chunk shards of real commits: which items changed, old and new code, skips and fallbacks."""

from __future__ import annotations

import random
import re

import pytest

from conftest import build_chunk_shard
from pipeline.chunks.changed_items import _anchored, _line_groups
from pipeline.chunks.pieces import _CUTTABLE_NODES, _container, _encloses, split_pieces
from pipeline.rust.files import crate_root_module, module_path
from pipeline.config import Settings
from pipeline.rust.parsing import get_parser

PEER_V1 = """use std::fmt;

pub struct PeerId(u64);

impl fmt::Display for PeerId {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "peer-{}", self.0)
    }
}

impl PeerId {
    pub fn new(id: u64) -> Self {
        PeerId(id)
    }

    pub fn id(&self) -> u64 {
        self.0
    }
}
"""


def shard_of(repo, sha, **settings):
    config = Settings(repo=str(repo.path), cache_dir=str(repo.path.parent / "cache"), **settings)
    return build_chunk_shard(config, sha)


def chunk_named(shard, qualname):
    matches = [chunk for chunk in shard["chunks"] if chunk["qualname"] == qualname]
    assert len(matches) == 1, [chunk["qualname"] for chunk in shard["chunks"]]
    return matches[0]


@pytest.mark.parametrize("path, module", [
    ("src/net/peer.rs", "net::peer"), ("crates/a/src/lib.rs", ""), ("src/net/mod.rs", "net"),
    ("build.rs", "build"), ("crates/a/src/x/y.rs", "x::y")])
def test_module_paths_follow_the_crate_layout(path, module):
    assert module_path(path) == module


@pytest.mark.parametrize("path, root", [
    ("src/lib.rs", []), ("crates/a/src/tests/mod.rs", []), ("build.rs", []),
    ("tests/cli.rs", ["tests"]), ("tests/common/mod.rs", ["tests"]),
    ("crates/a/tests/testsuite/support/mod.rs", ["crates", "a", "tests", "testsuite"]),
    ("benches/parse.rs", ["benches"]), ("examples/demo/main.rs", ["examples", "demo"]),
    ("src/bin/tool.rs", ["bin"]), ("crates/a/src/bin/cli/args.rs", ["bin", "cli"]),
    ("src/main.rs", []), ("crates/b/src/cargo/core/mod.rs", ["cargo"]),
    ("crates/b/src/cargo/lib.rs", ["cargo"])])
def test_a_binary_integration_test_benchmark_or_example_is_a_crate_root(path, root):
    files = {"tests/cli.rs", "tests/common/mod.rs", "crates/a/tests/testsuite/main.rs",
             "examples/demo/main.rs", "crates/a/src/bin/cli/main.rs",
             "crates/b/src/cargo/lib.rs"}
    assert crate_root_module(path, files.__contains__) == root


def test_an_edited_method_is_one_chunk_with_old_and_new_code(rust_repo):
    rust_repo.commit("peer", {"src/net/peer.rs": PEER_V1})
    sha = rust_repo.commit("format ids in hex", {
        "src/net/peer.rs": PEER_V1.replace('"peer-{}"', '"peer-{:x}"')})
    shard = shard_of(rust_repo, sha)
    assert shard["message"] == "format ids in hex\n"
    assert len(shard["chunks"]) == 1
    chunk = chunk_named(shard, "net::peer::impl fmt::Display for PeerId::fmt")
    assert chunk["kind"] == "method" and chunk["change"] == "modified"
    assert '"peer-{}"' in chunk["old_code"] and '"peer-{:x}"' in chunk["new_code"]
    assert chunk["old_code"].startswith("    fn fmt") and chunk["new_code"].rstrip().endswith("}")
    assert chunk["changed_lines"] == [[7, 7]]
    assert chunk["context"][0]["kind"] == "import" and "use std::fmt;" in chunk["context"][0]["text"]


def test_a_moved_method_is_no_change_and_a_moved_edited_one_is_one_chunk(rust_repo):
    rust_repo.commit("peer", {"src/peer.rs": PEER_V1})
    new_fn = "    pub fn new(id: u64) -> Self {\n        PeerId(id)\n    }\n"
    id_fn = "    pub fn id(&self) -> u64 {\n        self.0\n    }\n"
    swapped = PEER_V1.replace(new_fn + "\n" + id_fn, id_fn + "\n" + new_fn)
    assert swapped != PEER_V1
    moved = rust_repo.commit("reorder", {"src/peer.rs": swapped})
    assert shard_of(rust_repo, moved)["chunks"] == []
    edited = rust_repo.commit("reorder back, edit", {
        "src/peer.rs": PEER_V1.replace("PeerId(id)", "PeerId(id + 1)")})
    chunks = shard_of(rust_repo, edited)["chunks"]
    assert [(c["qualname"], c["change"]) for c in chunks] == [("peer::impl PeerId::new", "modified")]


def test_added_deleted_and_renamed_files(rust_repo):
    added = rust_repo.commit("add", {"src/peer.rs": PEER_V1, "README.md": "not rust\n"})
    shard = shard_of(rust_repo, added)
    assert {c["change"] for c in shard["chunks"]} == {"added"}
    assert all(c["old_code"] == "" and c["new_code"] for c in shard["chunks"])
    assert "peer::PeerId" in {c["qualname"] for c in shard["chunks"]}

    rust_repo.git("mv", "src/peer.rs", "src/node.rs")
    pure_rename = rust_repo.commit("rename", {})
    assert shard_of(rust_repo, pure_rename)["chunks"] == []

    rust_repo.git("mv", "src/node.rs", "src/host.rs")
    edited = PEER_V1.replace("self.0\n", "self.0 + 0\n")
    renamed = rust_repo.commit("rename and edit", {"src/host.rs": edited})
    chunk = chunk_named(shard_of(rust_repo, renamed), "host::impl PeerId::id")
    assert chunk["old_path"] == "src/node.rs" and chunk["path"] == "src/host.rs"
    assert "self.0\n" in chunk["old_code"] and "self.0 + 0" in chunk["new_code"]

    deleted = rust_repo.commit("delete", {"src/host.rs": None})
    shard = shard_of(rust_repo, deleted)           # nothing to write: no target by default
    assert shard["chunks"] == [] and shard["skipped"]["deletion"] >= 1
    chunks = shard_of(rust_repo, deleted, keep_deletions=True)["chunks"]
    assert chunks and all(c["change"] == "deleted" and c["new_code"] == "" for c in chunks)


def test_a_use_edit_outside_any_item_becomes_a_file_level_chunk(rust_repo):
    rust_repo.commit("peer", {"src/peer.rs": PEER_V1})
    sha = rust_repo.commit("import io", {"src/peer.rs": "use std::io;\n" + PEER_V1})
    chunks = shard_of(rust_repo, sha)["chunks"]
    assert len(chunks) == 1 and chunks[0]["kind"] == "file"
    assert "use std::io;" in chunks[0]["new_code"] and "use std::io;" not in chunks[0]["old_code"]


def test_extern_crate_lines_are_imports_of_the_file_level_chunk(rust_repo):
    head = "#![allow(dead_code)]\n\nextern crate serde;\n\nuse std::io;\n\n"
    rust_repo.commit("lib", {"src/lib.rs": head + PEER_V1})
    with_url = head.replace("extern crate serde;\n", "extern crate serde;\n#[macro_use]\nextern crate url;\n")
    sha = rust_repo.commit("use url", {"src/lib.rs": with_url + PEER_V1})
    chunks = shard_of(rust_repo, sha)["chunks"]
    assert [c["kind"] for c in chunks] == ["file"]
    # The imports verbatim, as the file has them: no elision where the extern crates sit.
    assert chunks[0]["new_code"] == with_url.strip() + "\n\nuse std::fmt;"
    assert chunks[0]["old_code"] == head.strip() + "\n\nuse std::fmt;"


def test_a_file_that_does_not_parse_falls_back_to_changed_line_windows(rust_repo):
    rust_repo.commit("peer", {"src/peer.rs": PEER_V1})
    broken = PEER_V1.replace("        self.0\n    }\n}\n", "        self.0\n<<<<<<< HEAD\n")
    sha = rust_repo.commit("conflict", {"src/peer.rs": broken})
    shard = shard_of(rust_repo, sha)
    assert shard["flagged"] == {"syntax_error_fallback": 1} and shard["skipped"] == {}
    assert len(shard["chunks"]) == 1
    chunk = shard["chunks"][0]
    assert chunk["kind"] == "lines" and "<<<<<<< HEAD" in chunk["new_code"]
    assert chunk["old_code"].strip()


def test_line_windows_describe_the_change_exactly_however_repetitive_the_file():
    """The hunks of a file that does not parse, matched between its versions' common head
    and tail: applied to the old lines, they give the new ones; context stays 3 lines."""
    rng = random.Random(7)
    lines = ["}", "", "    x += 1;", "fn a() {", "    let y = 2;"]
    for _ in range(300):
        old = [rng.choice(lines) for _ in range(rng.randrange(0, 60))]
        new = list(old)
        for _ in range(rng.randrange(0, 5)):
            at = rng.randrange(0, len(new) + 1)
            if rng.random() < 0.5:
                new.insert(at, rng.choice(lines))
            elif new:
                new[min(at, len(new) - 1)] += " // edited"
        rebuilt, at = [], 0
        for group in _line_groups(old, new, 3):
            assert group[0][0] != "equal" or group[0][2] - group[0][1] <= 3
            assert group[-1][0] != "equal" or group[-1][2] - group[-1][1] <= 3
            for tag, i1, i2, j1, j2 in group:
                rebuilt += old[at:i1] + new[j1:j2]
                assert tag != "equal" or old[i1:i2] == new[j1:j2]
                at = i2
        assert rebuilt + old[at:] == new


def big_function(changed: int | None = None) -> str:
    body = "".join(f"    let v{i} = compute({i if i != changed else -i});\n" for i in range(200))
    return f"/// Long.\npub fn big() -> u32 {{\n{body}    v0\n}}\n"


def test_an_added_oversize_item_is_split_between_statements_without_losing_code(rust_repo):
    sha = rust_repo.commit("big", {"src/big.rs": big_function()})
    chunks = [c for c in shard_of(rust_repo, sha, max_item_chars=500)["chunks"]
              if c["qualname"] == "big::big"]
    assert len(chunks) > 1
    # Every piece after the first carries the signature, then an elision marker.
    signature = "pub fn big() -> u32 {\n    // …\n"
    assert all(c["new_code"].startswith(signature) for c in chunks[1:])
    pieces = [chunks[0]["new_code"]] + [c["new_code"][len(signature):] for c in chunks[1:]]
    assert "".join(pieces) == big_function().rstrip("\n")
    assert all(len(piece) <= 500 and not c["truncated"] for piece, c in zip(pieces, chunks))
    assert all(piece.endswith("\n") for piece in pieces[:-1])   # cut between lines


def test_a_modified_oversize_item_yields_only_its_changed_region(rust_repo):
    rust_repo.commit("big", {"src/big.rs": big_function()})
    sha = rust_repo.commit("change one statement", {"src/big.rs": big_function(changed=120)})
    (chunk,) = shard_of(rust_repo, sha, max_item_chars=500)["chunks"]
    signature = "pub fn big() -> u32 {\n    // …\n"
    assert chunk["old_code"] == signature + "    let v120 = compute(120);\n"
    assert chunk["new_code"] == signature + "    let v120 = compute(-120);\n"
    assert chunk["changed_lines"] == [[123, 123]] and chunk["part"].startswith("1.1 of 1")


def big_table(inserted: bool = False) -> str:
    rows = [f'    ("k{i}", {i}),\n' for i in range(200)]
    if inserted:
        rows.insert(100, '    ("new", -1),\n')
    return "pub const TABLE: &[(&str, i32)] = &[\n" + "".join(rows) + "];\n"


def test_a_line_inserted_in_an_oversize_table_is_its_only_region(rust_repo):
    """A table has no syntax children to cut between: its lines are the pieces, so one
    inserted line is the one region, not every later piece moved by a line. The row
    before it comes along on both sides, to say where it goes."""
    rust_repo.commit("table", {"src/table.rs": big_table()})
    sha = rust_repo.commit("one more row", {"src/table.rs": big_table(inserted=True)})
    (chunk,) = shard_of(rust_repo, sha, max_item_chars=500)["chunks"]
    assert chunk["old_code"].endswith('    // …\n    ("k99", 99),\n')
    assert chunk["new_code"].endswith('    // …\n    ("k99", 99),\n    ("new", -1),\n')
    assert '"k98' not in chunk["new_code"] and chunk["changed_lines"] == [[102, 102]]


def test_a_block_moved_within_an_oversize_item_is_a_removal_and_an_insertion(rust_repo):
    """Each side of a move keeps the row before it: the removal is a chunk with new code
    too, not dropped, and the insertion says where it goes."""
    rows = [f'    ("k{i}", {i}),\n' for i in range(200)]
    moved = rows[:50] + rows[53:150] + rows[50:53] + rows[150:]
    rust_repo.commit("table", {"src/table.rs": big_table()})
    sha = rust_repo.commit("move three rows", {"src/table.rs": big_table().replace(
        "".join(rows), "".join(moved))})
    chunks = shard_of(rust_repo, sha, max_item_chars=500)["chunks"]
    ends = [(c["old_code"].split("// …\n")[-1], c["new_code"].split("// …\n")[-1])
            for c in chunks]
    assert ends == [("".join(rows[49:53]), rows[49]),
                    (rows[149], rows[149] + "".join(rows[50:53]))]


def test_a_split_item_keeps_its_doc_comments_and_attributes_with_its_signature():
    """An item whose text starts with doc comments and attributes has several top-level
    children: its first piece is all of them and the signature, not its first doc line
    alone (which made the next piece start one line late, after a repeated signature)."""
    body = "".join(f"    let v{i} = compute({i});\n" for i in range(40))
    head = "/// Activates things.\n/// Second line.\n#[inline]\npub fn f() {\n"
    pieces = split_pieces(head + body + "}\n", 300)
    assert pieces[0] == head and pieces[1] == "    let v0 = compute(0);\n"
    assert "".join(pieces) == head + body + "}\n"


def test_an_item_is_cut_inside_its_widest_container_the_last_of_equally_wide_ones():
    """_container's choice: the widest node to cut in that has more than one named child;
    of equally wide ones, the last."""
    def branches(first):
        return (b"fn f() {\n    if t {\n" + first + b"    } else {\n        c(3);\n"
                b"        d(4);\n    }\n}\n")
    same = branches(b"        a(1);\n        b(2);\n")
    root = get_parser().parse(same).root_node
    assert same[_container(root).start_byte:].startswith(b"{\n        c(3);")
    wider = branches(b"        a(1);\n        b(2);\n        e(5);\n")
    root = get_parser().parse(wider).root_node
    assert wider[_container(root).start_byte:].startswith(b"{\n        a(1);")
    # Several top-level children (an item's docs and attributes, a file's imports): the
    # file itself.
    docs = b"/// Doc.\n#[inline]\nfn f() {\n    a(1);\n    b(2);\n}\n"
    assert _container(get_parser().parse(docs).root_node).type == "source_file"
    # A block of one statement is no place to cut; the call's token tree (`m!`) is.
    one = b"fn f() {\n    m!(a, b, c);\n}\n"
    container = _container(get_parser().parse(one).root_node)
    assert container.type == "token_tree" and one[container.start_byte:container.end_byte] \
        == b"(a, b, c)"
    assert _container(get_parser().parse(b"const X: u8 = 1;\n").root_node) is None
    # Of two nodes with one span, the outer one encloses the inner one.
    root = get_parser().parse(b"fn f() {}").root_node
    function = root.named_children[0]
    assert (root.start_byte, root.end_byte) == (function.start_byte, function.end_byte)
    assert _encloses(root, function) and not _encloses(function, root)


# What _container must choose, as a walk over the named nodes (the spec the query is checked
# by): the first widest of them, in a walk that visits later siblings first.


def _container_by_walk(node):
    best, best_width, stack = None, -1, [node]
    while stack:
        current = stack.pop()
        width = current.end_byte - current.start_byte
        if current.type in _CUTTABLE_NODES and current.named_child_count > 1 and width > best_width:
            best, best_width = current, width
        stack.extend(current.named_children)
    return best


def test_the_container_query_chooses_as_the_walk_over_the_tree_does():
    pieces = ["fn f() {", "}", "{", "(", ")", "[", "]", "a;", "b(1);", "m!(", "m![", "m!{",
              "match x {", "A => 1,", "_ => {}", "use a::{b, c};", "struct S {", "x: u8,",
              "enum E {", "V,", "impl T for S {", "mod m {", "struct P(u8, u8);", " ", "\n",
              "let v = vec![1, 2];", "if c { d(); e(); }", "/* x */", "// y\n", "\"s{\"",
              "'c'", "::", "=>", ","]
    generator, chosen = random.Random(13), 0
    for _ in range(1500):
        source = "".join(generator.choice(pieces) for _ in range(generator.randint(1, 40)))
        nodes, stack = [], [get_parser().parse(source.encode()).root_node]
        while stack:
            nodes.append(stack.pop())
            stack.extend(nodes[-1].children)
        for node in generator.sample(nodes, min(len(nodes), 6)):
            expected = _container_by_walk(node)
            found = _container(node)
            assert (found is None) == (expected is None), source
            if expected is not None:
                chosen += 1
                assert (found.start_byte, found.end_byte, found.type) == (
                    expected.start_byte, expected.end_byte, expected.type), source
    assert chosen > 400


def test_a_single_line_over_budget_is_no_target_and_is_counted(rust_repo):
    sha = rust_repo.commit("long line", {"src/long.rs": "pub const TABLE: [u8; 3] = [" +
                                         "1, " * 400 + "];\n"})
    shard = shard_of(rust_repo, sha, max_item_chars=300)
    assert shard["chunks"] == [] and shard["skipped"] == {"line_over_max_item_chars": 1}


def test_merge_commits_are_skipped_by_default_and_diffed_against_the_first_parent_if_asked(
        rust_repo):
    rust_repo.commit("base", {"src/peer.rs": PEER_V1})
    rust_repo.git("checkout", "-q", "-b", "side")
    rust_repo.commit("side", {"src/side.rs": "pub fn side() {}\n"})
    rust_repo.git("checkout", "-q", "main")
    rust_repo.commit("main", {"src/other.rs": "pub fn other() {}\n"})
    rust_repo.git("merge", "-q", "--no-ff", "-m", "merge side", "side")
    merge = rust_repo.git("rev-parse", "HEAD").strip()
    skipped = shard_of(rust_repo, merge)
    assert skipped["chunks"] == [] and skipped["skipped"] == {"merge_commit": 1}
    included = shard_of(rust_repo, merge, include_merges=True)
    assert [c["qualname"] for c in included["chunks"]] == ["side::side"]


def test_symlinks_and_generated_files_are_skipped_and_counted(rust_repo):
    rust_repo.commit("base", {"src/peer.rs": PEER_V1})
    (rust_repo.path / "src" / "link.rs").symlink_to("peer.rs")
    sha = rust_repo.commit("link and generated", {
        "src/gen.rs": "// @generated by a tool\npub fn g() {}\n"})
    shard = shard_of(rust_repo, sha)
    assert shard["chunks"] == []
    assert shard["skipped"] == {"generated_file": 1, "symlink": 1}


def test_a_non_utf8_file_is_decoded_with_replacement_and_counted(rust_repo):
    rust_repo.commit("peer", {"src/peer.rs": PEER_V1})
    latin1 = PEER_V1.replace('"peer-{}"', '"caf\xe9-{}"').encode("latin-1")
    sha = rust_repo.commit("latin-1 string", {"src/peer.rs": latin1})
    shard = shard_of(rust_repo, sha)
    assert shard["flagged"] == {"non_utf8_decoded_with_replacement": 1}
    chunk = chunk_named(shard, "peer::impl fmt::Display for PeerId::fmt")
    assert '"caf\ufffd-{}"' in chunk["new_code"]


def test_adding_a_method_is_one_chunk_not_also_a_whitespace_change_of_its_impl(rust_repo):
    rust_repo.commit("peer", {"src/peer.rs": PEER_V1})
    extra = "    pub fn double(&self) -> u64 {\n        self.0 * 2\n    }\n"
    sha = rust_repo.commit("double", {"src/peer.rs": PEER_V1.replace(
        "        self.0\n    }\n}\n", "        self.0\n    }\n\n" + extra + "}\n")})
    chunks = shard_of(rust_repo, sha)["chunks"]
    assert [(c["qualname"], c["change"]) for c in chunks] == [("peer::impl PeerId::double", "added")]


def test_a_macro_call_inserted_among_many_of_the_same_name_is_one_addition(rust_repo):
    tests = [f"rgtest!(case{i}, |dir| {{\n    dir.create(\"f{i}\", \"{i}\");\n}});\n"
             for i in range(8)]
    rust_repo.commit("tests", {"tests/regression.rs": "\n".join(tests)})
    inserted = tests[:3] + ["rgtest!(new_case, |dir| {\n    dir.create(\"n\", \"n\");\n});\n"] + tests[3:]
    sha = rust_repo.commit("one more", {"tests/regression.rs": "\n".join(inserted)})
    chunks = shard_of(rust_repo, sha)["chunks"]
    assert [(c["qualname"], c["change"]) for c in chunks] == [("tests::regression::rgtest!", "added")]
    assert "new_case" in chunks[0]["new_code"]


def test_a_macro_call_edited_beside_one_inserted_before_it_is_paired_with_itself(rust_repo):
    """cargo's 51432d488a inserted a `test!` before one it edited: paired in order, the
    edit became the new test's old code and the edited test an addition."""
    tests = [f"test!(case{i} {{\n    check({i});\n}});\n" for i in range(4)]
    rust_repo.commit("tests", {"tests/cli.rs": "\n".join(tests)})
    edited = tests[2].replace("check(2);", "check(2);\n    check(22);")
    new = tests[:2] + ["test!(inserted {\n    check(9);\n});\n", edited] + tests[3:]
    sha = rust_repo.commit("one more, one edited", {"tests/cli.rs": "\n".join(new)})
    chunks = shard_of(rust_repo, sha)["chunks"]
    assert [(c["change"], c["old_code"], c["new_code"]) for c in chunks] == [
        ("added", "", "test!(inserted {\n    check(9);\n});"),
        ("modified", tests[2].strip(), edited.strip())]


def test_an_oversize_item_is_cut_only_at_line_starts_never_inside_a_macro_call():
    """A macro's token tree has its tokens for children (`doc`, `!`, `(..)`): cutting
    between them began a piece with `(h, "colors", ..` and left `doc!` and the indentation
    in the piece before."""
    calls = "".join(f'        doc!(h, "flag{i}", "A long description of flag number {i}.",\n'
                    f'             "and its second line, {i}");\n' for i in range(40))
    text = f"lazy_static! {{\n    static ref DOCS: Docs = {{\n{calls}    }};\n}}\n"
    pieces = split_pieces(text, 300)
    assert "".join(pieces) == text and len(pieces) > 10
    assert all(piece.endswith("\n") for piece in pieces[:-1])
    assert all(piece.lstrip().startswith(("doc!", "}")) for piece in pieces[1:])


def test_an_item_that_grows_over_the_budget_aligns_its_old_and_new_statements(rust_repo):
    """Old code under the budget is cut as the new code over it is: the statements the
    commit adds are the one region (after the statement before them), and the unchanged
    ones are in no chunk, neither as a deletion nor as an addition."""
    def function(count):
        body = "".join(f"    let v{i} = compute({i});\n" for i in range(count))
        return f"pub fn grow() -> u32 {{\n{body}    v0\n}}\n"
    rust_repo.commit("grow", {"src/grow.rs": function(12)})
    sha = rust_repo.commit("grow more", {"src/grow.rs": function(20)})
    assert len(function(12)) < 500 < len(function(20))
    (chunk,) = shard_of(rust_repo, sha, max_item_chars=500)["chunks"]
    signature = "pub fn grow() -> u32 {\n    // …\n"
    assert chunk["old_code"] == signature + "    let v11 = compute(11);\n"
    assert chunk["new_code"] == signature + "".join(
        f"    let v{i} = compute({i});\n" for i in range(11, 20))


def test_an_oversize_item_is_never_cut_between_a_member_and_its_docs_or_attributes():
    methods = "".join(f"    /// Returns the number {i}.\n    ///\n    /// More about it.\n"
                      f"    #[inline]\n    // note {i}\n    pub fn n{i}(&self) -> u32 {{ {i} }}\n\n"
                      for i in range(30))
    text = f"impl Numbers {{\n{methods}}}\n"
    pieces = split_pieces(text, 300)
    assert "".join(pieces) == text and len(pieces) > 5
    for piece in pieces[1:]:
        assert piece.lstrip().startswith(("/// Returns", "}")), piece


def test_a_part_of_a_renamed_field_edit_has_the_old_code_it_replaced(rust_repo):
    """Every statement of a long function edited (a field renamed, lines reflowed) is one
    region of as many pieces on both sides: each part's old code is what its new code
    replaced, and no part is new code alone."""
    def function(field, wrap):
        body = "".join(f"    let v{i} ={wrap}self.{field}.get({i});\n" for i in range(40))
        return f"pub fn read(&self) -> u32 {{\n{body}    0\n}}\n"
    rust_repo.commit("read", {"src/read.rs": function("0", " ")})
    sha = rust_repo.commit("name the field", {"src/read.rs": function("inner", "\n        ")})
    chunks = shard_of(rust_repo, sha, max_item_chars=500)["chunks"]
    assert len(chunks) > 3
    for chunk in chunks:
        old = [int(n) for n in re.findall(r"get\((\d+)\)", chunk["old_code"])]
        new = [int(n) for n in re.findall(r"get\((\d+)\)", chunk["new_code"])]
        assert old and old == new, chunk


def test_a_line_added_after_a_blank_line_of_a_long_string_keeps_the_text_line_before():
    olds = ['const USAGE: &str = "\n', "    --a\n", "        Does a.\n", "\n", "    --c\n"]
    # `    --b` inserted before `    --c`: new pieces 4:5 against none at old 4.
    assert _anchored([(4, 4, 4, 5)], olds) == [(2, 4, 2, 5)]


def test_an_impl_whose_generics_were_renamed_keeps_its_methods_paired(rust_repo):
    """Cargo's 305efa63cc made `impl<'cfg> DrainState<'cfg>` `impl<'gctx> ...<'gctx>`: its
    methods, unchanged ones too, came out as new code and the old ones as deletions."""
    methods = ("    pub fn run(&self) -> u32 {\n        self.jobs + 1\n    }\n\n"
               "    pub fn stop(&self) -> bool {\n        self.jobs == 0\n    }\n")
    source = "pub struct Drain<'a> {\n    jobs: u32,\n    name: &'a str,\n}\n\n" \
             "impl<'LT> Drain<'LT> {\n" + methods + "}\n"
    rust_repo.commit("drain", {"src/drain.rs": source.replace("LT", "cfg")})
    sha = rust_repo.commit("rename lifetime", {"src/drain.rs": source.replace(
        "LT", "gctx").replace("self.jobs + 1", "self.jobs + 2")})
    chunks = shard_of(rust_repo, sha)["chunks"]
    assert [(c["qualname"], c["change"]) for c in chunks] == [
        ("drain::impl Drain<'gctx>", "modified"), ("drain::impl Drain<'gctx>::run", "modified")]
    assert chunks[0]["old_code"] == "impl<'cfg> Drain<'cfg>"
    assert "self.jobs + 1" in chunks[1]["old_code"] and "self.jobs + 2" in chunks[1]["new_code"]


def test_the_methods_of_a_renamed_type_follow_its_impl(rust_repo):
    """Cargo's 305efa63cc renamed `Config` to `GlobalContext`: `impl Config`'s methods,
    too many to compare one by one, were trained as new code, unchanged ones too."""
    methods = "".join(f"    pub fn m{i}(&self) -> u32 {{\n        self.jobs + {i}\n    }}\n\n"
                      for i in range(45))
    source = "pub struct NAME {\n    jobs: u32,\n}\n\nimpl NAME {\n" + methods + "}\n"
    rust_repo.commit("config", {"src/config.rs": source.replace("NAME", "Config")})
    sha = rust_repo.commit("rename", {"src/config.rs": source.replace(
        "NAME", "GlobalContext").replace("self.jobs + 7\n", "self.jobs * 7\n")})
    chunks = shard_of(rust_repo, sha)["chunks"]
    assert [(c["qualname"], c["change"]) for c in chunks] == [
        ("config::GlobalContext", "modified"), ("config::impl GlobalContext", "modified"),
        ("config::impl GlobalContext::m7", "modified")]
    assert chunks[1]["old_code"] == "impl Config" and "self.jobs + 7" in chunks[2]["old_code"]


def test_the_provided_methods_of_a_renamed_trait_follow_it(rust_repo):
    """Cargo's 8b80440350 renamed the trait `CommonArgs` to `AppExt` and changed nothing
    else: its methods were trained as new code."""
    methods = "".join(f"    fn arg_{i}(self) -> Self {{\n        self._arg({i})\n    }}\n\n"
                      for i in range(3))
    source = "pub trait NAME: Sized {\n    fn _arg(self, n: u8) -> Self;\n\n" + methods + "}\n"
    rust_repo.commit("trait", {"src/prelude.rs": source.replace("NAME", "CommonArgs")})
    sha = rust_repo.commit("rename", {"src/prelude.rs": source.replace("NAME", "AppExt")})
    chunks = shard_of(rust_repo, sha)["chunks"]
    assert [(c["qualname"], c["change"], c["old_code"], c["new_code"]) for c in chunks] == [
        ("prelude::AppExt", "modified", "pub trait CommonArgs: Sized", "pub trait AppExt: Sized")]


def test_a_renamed_method_is_one_modified_chunk_not_an_addition_and_a_deletion(rust_repo):
    """ripgrep's 27a980c renamed `link` to `link_dir` (two cfg'd twins): each was trained
    as a new method, and the old ones were dropped as deletions."""
    link = ("    /// Creates a link.\n    #[cfg(CFG)]\n    pub fn NAME(&self, src: &str) {\n"
            "        let target = self.dir.join(src);\n        make_link(&target);\n"
            "        self.count += 1;\n    }\n")
    twins = "".join(link.replace("CFG", cfg) for cfg in ("unix", "windows"))
    source = "impl WorkDir {\nTWINS\n    pub fn other(&self) {}\n}\n"
    rust_repo.commit("links", {"tests/workdir.rs": source.replace(
        "TWINS", twins.replace("NAME", "link"))})
    sha = rust_repo.commit("link_dir", {"tests/workdir.rs": source.replace(
        "TWINS", twins.replace("NAME", "link_dir"))})
    chunks = shard_of(rust_repo, sha, keep_repeated_edits=True)["chunks"]
    assert [(c["qualname"], c["change"]) for c in chunks] == [
        ("tests::workdir::impl WorkDir::link_dir", "modified")] * 2
    assert all("fn link(" in c["old_code"] and "fn link_dir(" in c["new_code"] for c in chunks)
    # The twins' edit is the same: by default the second is a repeat.
    shard = shard_of(rust_repo, sha)
    assert shard["chunks"] == chunks[:1] and shard["skipped"] == {"repeated_edit": 1}
    # A method replaced by a different one stays an addition (and a skipped deletion).
    other = rust_repo.commit("other", {"tests/workdir.rs": source.replace(
        "TWINS", twins.replace("NAME", "link_dir")).replace(
        "    pub fn other(&self) {}\n", "    pub fn unrelated(&mut self) -> u8 {\n        7\n    }\n")})
    assert [(c["qualname"], c["change"]) for c in shard_of(rust_repo, other)["chunks"]] == [
        ("tests::workdir::impl WorkDir::unrelated", "added")]
