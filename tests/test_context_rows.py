"""Context as a model reads it: real builds, rows decoded to text and read."""

from __future__ import annotations

import re


from conftest import build_chunk_shard, run_doit
from pipeline.config import Settings
from pipeline.loading import load_tensors
from pipeline.rust.parsing import parse
from pipeline.show import describe_row

LIB = "pub mod model;\npub mod server;\npub mod util;\n"
MODEL = """/// A remote peer.
pub struct Peer {
    pub id: u64,
}
"""
SERVER = """use crate::model::Peer;

pub fn serve(peer: Peer) -> u64 {
    peer.id + 1
}
"""


def rows_of(workdir, sha: str) -> list[str]:
    """Every row of commit sha, in any split, as the labelled text `pipeline.show` prints."""
    found = []
    for split in ("train", "val", "test"):
        tensors = load_tensors(workdir / "dataset", split)
        found += [describe_row(workdir / "dataset", split, row)
                  for row, commit in enumerate(tensors["commit_sha"]) if commit == sha]
    assert found, f"no row for {sha}"
    return found


def fields(row: str) -> list[tuple[str, str]]:
    """(label, text) of each field of a row printed by pipeline.show."""
    parts = re.split(r"^── (.+?) ─+$", row, flags=re.MULTILINE)
    return [(label, text.strip("\n")) for label, text in zip(parts[1::2], parts[2::2])]


def snippets(row: str, label_start: str) -> list[str]:
    return [text for label, text in fields(row) if label.startswith(label_start)]


def test_context_is_the_parent_tree_and_a_renamed_type_is_a_marked_same_commit_snippet(
        workdir, rust_repo):
    root = rust_repo.commit("peer and server", {
        "src/lib.rs": LIB, "src/model.rs": MODEL, "src/server.rs": SERVER,
        "src/util.rs": "pub fn helper() {}\n"})
    rust_repo.commit("serve twice", {"src/server.rs": SERVER.replace("+ 1", "+ 2")})
    rename = rust_repo.commit("Rename Peer to Node", {
        "src/model.rs": MODEL.replace("Peer", "Node"),
        "src/server.rs": SERVER.replace("Peer", "Node").replace("+ 1", "+ 3")})
    assert run_doit(f"repo={rust_repo.path}", "val_ratio=0", "test_ratio=0")[0] == 0

    (row,) = rows_of(workdir, rename)
    parent = snippets(row, "CONTEXT struct (parent tree)")
    same_commit = snippets(row, "CONTEXT struct (changed in this commit)")
    assert parent == ["/// A remote peer.\npub struct Peer {\n    pub id: u64,\n}"]
    assert same_commit == ["// changed in this commit\n/// A remote peer.\n"
                           "pub struct Node {\n    pub id: u64,\n}"]
    # The changed file's imports are its parent version's, the old code of its file-level
    # segment, which comes first (the new `use` is its target): not repeated as context.
    assert "CONTEXT import" not in row and row.count("use crate::model::Peer;") == 1
    assert row.index("use crate::model::Node;") < row.index("pub fn serve")
    (root_row,) = rows_of(workdir, root)
    # A root commit has no parent: what context it has is its own, marked.
    assert "(parent tree)" not in root_row and "CONTEXT import" not in root_row


UTIL = """/// Builds a handle from a local id.
pub fn new(local: u8) -> u8 {
    local
}

pub fn checksum(data: &[u8]) -> u8 {
    data.len() as u8
}
"""


def test_type_new_resolves_the_type_and_never_a_free_fn_new(workdir, rust_repo):
    rust_repo.commit("base", {"src/lib.rs": LIB, "src/model.rs": MODEL, "src/util.rs": UTIL,
                              "src/server.rs": "pub fn serve() -> u8 {\n    0\n}\n"})
    sha = rust_repo.commit("serve builds a peer", {"src/server.rs": (
        "use crate::model::Peer;\n\npub fn serve() -> u8 {\n    let peer = Peer::new(1);\n"
        "    let other = Peer::default();\n    util::checksum(&[peer.id as u8])\n}\n")})
    assert run_doit(f"repo={rust_repo.path}", "val_ratio=0", "test_ratio=0")[0] == 0
    (row,) = rows_of(workdir, sha)
    definitions = snippets(row, "CONTEXT fn") + snippets(row, "CONTEXT struct")
    assert any("pub struct Peer" in text for text in definitions)
    assert any("pub fn checksum" in text for text in definitions)   # a module path call
    assert not any("pub fn new" in text for text in definitions)


def test_imports_once_per_row_and_a_repeated_snippet_makes_room_for_the_next(
        workdir, rust_repo):
    types = "pub struct Alpha {\n    pub a: u8,\n}\n\npub struct Beta {\n    pub b: u8,\n}\n"
    code = ("use crate::model::{Alpha, Beta};\n\npub fn first(x: Alpha) -> u8 {\n    x.a\n}\n\n"
            "pub fn second(x: Alpha, y: Beta) -> u8 {\n    x.a + y.b\n}\n")
    rust_repo.commit("base", {"src/lib.rs": LIB, "src/model.rs": types, "src/server.rs": code})
    sha = rust_repo.commit("both add one", {"src/server.rs": code.replace("x.a\n", "x.a + 1\n")
                                            .replace("y.b\n", "y.b + 1\n")})
    assert run_doit(f"repo={rust_repo.path}", "val_ratio=0", "test_ratio=0",
                    "context_per_kind=1")[0] == 0
    (row,) = rows_of(workdir, sha)
    assert len(snippets(row, "CONTEXT import")) == 1
    shown = snippets(row, "CONTEXT struct")
    # `second` would show Alpha alone (one struct per chunk); Alpha is in the row already,
    # so its room goes to Beta.
    assert sorted(text.split("{")[0].strip() for text in shown) == [
        "pub struct Alpha", "pub struct Beta"]
    assert row.count("MESSAGE") == 2 and row.count("both add one") == 1   # message once


def test_pieces_of_a_split_item_get_the_context_of_their_own_code(rust_repo):
    types = "pub struct Alpha {\n    pub a: u8,\n}\n\npub struct Beta {\n    pub b: u8,\n}\n"
    filler = "".join(f"    let v{i} = {i};\n" for i in range(40))
    body = ("pub fn long() -> u8 {\n    let x = Alpha { a: 1 };\n" + filler +
            "    let y = Beta { b: 2 };\n    x.a + y.b\n}\n")
    rust_repo.commit("base", {"src/lib.rs": LIB, "src/model.rs": types,
                              "src/server.rs": "use crate::model::{Alpha, Beta};\n\n" + body})
    sha = rust_repo.commit("change both ends", {
        "src/server.rs": "use crate::model::{Alpha, Beta};\n\n" +
        body.replace("a: 1", "a: 10").replace("b: 2", "b: 20")})
    config = Settings(repo=str(rust_repo.path), cache_dir=str(rust_repo.path.parent / "cache"),
                      max_item_chars=300)
    pieces = [c for c in build_chunk_shard(config, sha)["chunks"] if c["qualname"] == "server::long"]
    assert len(pieces) == 2 and all(p["part"] for p in pieces)
    for piece in pieces:
        names = {s["name"] for s in piece["context"] if s["kind"] != "import"}
        expected = {"Alpha"} if "Alpha" in piece["new_code"] else {"Beta"}
        assert names == expected, (piece["new_code"], names)


TRAIT = """pub trait Store {
    /// Saves a value.
    fn save<E>(&self, value: u8) -> Result<(), E>
    where
        E: std::error::Error,
    {
        Ok(())
    }

    fn load(&self) -> u8;
}

/// Many fields.
pub struct Wide {
""" + "".join(f"    pub field_{i}: u64,\n" for i in range(60)) + "}\n"


def test_snippets_are_valid_rust_with_where_clauses_whole(workdir, rust_repo):
    impl = ("use crate::model::{Store, Wide};\n\npub struct Disk;\n\nimpl Store for Disk {\n"
            "    fn load(&self) -> u8 {\n        LOAD\n    }\n}\n\n"
            "pub fn width(w: Wide) -> u64 {\n    w.field_0\n}\n")
    rust_repo.commit("base", {"src/lib.rs": LIB, "src/model.rs": TRAIT,
                              "src/server.rs": impl.replace("LOAD", "1")})
    sha = rust_repo.commit("load two", {"src/server.rs": impl.replace("LOAD", "2")
                                        .replace("w.field_0", "w.field_1")})
    assert run_doit(f"repo={rust_repo.path}", "val_ratio=0", "test_ratio=0")[0] == 0
    (row,) = rows_of(workdir, sha)
    (trait,) = snippets(row, "CONTEXT trait")
    assert "    where\n        E: std::error::Error;" in trait and ",;" not in trait
    (wide,) = snippets(row, "CONTEXT struct")
    assert wide.endswith("    // …\n}") and len(wide) <= 500       # cut, braces closed
    for text in (trait, wide):
        assert not parse(text.encode()).tree.root_node.has_error, text


def test_a_name_imported_from_outside_the_repository_never_resolves_by_uniqueness(
        workdir, rust_repo):
    rust_repo.commit("base", {"src/lib.rs": LIB, "src/model.rs": "pub enum Command {\n    Run,\n}\n",
                              "src/server.rs": "pub fn serve() {}\n", "src/util.rs": ""})
    sha = rust_repo.commit("serve runs ls", {"src/server.rs": (
        "use std::process::Command;\n\npub fn serve() {\n    Command::new(\"ls\").status().ok();\n}\n")})
    assert run_doit(f"repo={rust_repo.path}", "val_ratio=0", "test_ratio=0")[0] == 0
    (row,) = rows_of(workdir, sha)
    assert "pub enum Command" not in row


def test_the_import_snippet_is_the_file_scope_once_and_file_chunks_get_none(
        workdir, rust_repo):
    server = SERVER + "\n#[cfg(test)]\nmod tests {\n    use super::*;\n    use crate::model::Peer;\n}\n"
    rust_repo.commit("base", {"src/lib.rs": LIB, "src/model.rs": MODEL, "src/server.rs": server,
                              "src/util.rs": ""})
    serve = rust_repo.commit("serve adds two", {"src/server.rs": server.replace("+ 1", "+ 2")})
    use = rust_repo.commit("use io", {"src/server.rs": "use std::io;\n" + server.replace(
        "+ 1", "+ 2")})
    assert run_doit(f"repo={rust_repo.path}", "val_ratio=0", "test_ratio=0")[0] == 0
    (row,) = rows_of(workdir, serve)
    assert snippets(row, "CONTEXT import") == ["use crate::model::Peer;"]
    (row,) = rows_of(workdir, use)                # the old code is the imports already
    assert "CONTEXT import" not in row and "use std::io;" in row


def test_a_2015_import_of_a_crate_root_item_resolves(workdir, rust_repo):
    lib = "pub mod server;\n\n/// The crate's error.\npub struct Error;\n"
    code = "use Error;\n\npub fn serve() -> Result<(), Error> {\n    Ok(())\n}\n"
    rust_repo.commit("base", {"src/lib.rs": lib, "src/server.rs": code})
    sha = rust_repo.commit("serve fails", {"src/server.rs": code.replace("Ok(())", "Err(Error)")})
    assert run_doit(f"repo={rust_repo.path}", "val_ratio=0", "test_ratio=0")[0] == 0
    (row,) = rows_of(workdir, sha)
    assert snippets(row, "CONTEXT struct (parent tree)") == ["/// The crate's error.\npub struct Error;"]


def test_a_row_with_a_files_imports_changed_shows_them_once_as_old_code(workdir, rust_repo):
    """The file-level segment (its old code is the imports) comes first, and the file's
    other segments in the row then leave out the same imports as context."""
    rust_repo.commit("base", {"src/lib.rs": LIB, "src/model.rs": MODEL, "src/server.rs": SERVER,
                              "src/util.rs": ""})
    sha = rust_repo.commit("serve with io", {"src/server.rs": "use std::io;\n" + SERVER.replace(
        "peer.id + 1", "peer.id + io::stdout().lock().len() as u64")})
    assert run_doit(f"repo={rust_repo.path}", "val_ratio=0", "test_ratio=0")[0] == 0
    (row,) = rows_of(workdir, sha)
    assert "CONTEXT import" not in row
    assert row.count("use crate::model::Peer;") == 2      # old code, and new code (the loss)
    assert row.index("use std::io;") < row.index("pub fn serve")


def test_a_long_import_list_keeps_the_imports_the_changed_code_uses(rust_repo):
    """Over the per-snippet budget, the import snippet keeps what the file's changed code
    uses (and globs and traits), marked as cut, instead of being left out whole at the
    tokens stage."""
    names = [f"Widget{i:02}" for i in range(60)]
    code = ("use crate::model::*;\nuse std::io::BufRead;\nuse crate::parts::Named;\n" +
            "".join(f"use crate::parts::{n};\n" for n in names) +
            "\npub fn build(a: Widget07, b: Widget42) -> u8 {\n    BODY\n}\n")
    rust_repo.commit("base", {"src/lib.rs": LIB + "pub mod parts;\n", "src/model.rs": MODEL,
                              "src/parts.rs": "pub trait Named {\n    fn name(&self);\n}\n" +
                                              "".join(f"pub struct {n};\n" for n in names),
                              "src/server.rs": code.replace("BODY", "1")})
    sha = rust_repo.commit("build two", {"src/server.rs": code.replace("BODY", "2")})
    config = Settings(repo=str(rust_repo.path), cache_dir=str(rust_repo.path.parent / "cache"))
    (chunk,) = build_chunk_shard(config, sha)["chunks"]
    (imports,) = [s["text"] for s in chunk["context"] if s["kind"] == "import"]
    # The traits too, whose methods code calls without naming them (`.lines()`).
    assert imports == ("use crate::model::*;\nuse std::io::BufRead;\nuse crate::parts::Named;\n"
                       "use crate::parts::Widget07;\nuse crate::parts::Widget42;\n// …")
    # Those of the names the changed lines use come first: a list still over its token
    # budget keeps its first lines.
    sha = rust_repo.commit("build with 42", {"src/server.rs": code.replace(
        "BODY", "std::mem::size_of::<Widget42>() as u8")})
    (chunk,) = build_chunk_shard(config, sha)["chunks"]
    (imports,) = [s["text"] for s in chunk["context"] if s["kind"] == "import"]
    assert imports.startswith("use crate::parts::Widget42;\nuse crate::model::*;\n")


def test_an_import_list_over_its_token_budget_is_cut_after_a_whole_line(workdir, rust_repo):
    """A definition over budget_context is left out (cut, it might not be valid Rust); a
    list of imports keeps its whole lines that fit."""
    names = ["Alpha", "Beta", "Gamma", "Delta", "Epsilon", "Zeta"]
    code = ("".join(f"use crate::model::{n};\n" for n in names) +
            f"\npub fn all(a: {', '.join(names)}) -> u8 {{\n    BODY\n}}\n")
    rust_repo.commit("base", {"src/lib.rs": LIB, "src/model.rs": "".join(
        f"pub struct {n};\n" for n in names), "src/server.rs": code.replace("BODY", "1"),
        "src/util.rs": ""})
    sha = rust_repo.commit("all: two", {"src/server.rs": code.replace("BODY", "2")})
    assert run_doit(f"repo={rust_repo.path}", "val_ratio=0", "test_ratio=0",
                    "budget_context=24")[0] == 0
    (row,) = rows_of(workdir, sha)
    (imports,) = snippets(row, "CONTEXT import")
    *lines, marker = imports.split("\n")
    assert 1 <= len(lines) < len(names) and marker == "// …"     # the cut is said
    assert lines == [f"use crate::model::{n};" for n in names[:len(lines)]]
