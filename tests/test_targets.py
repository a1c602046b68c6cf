"""What becomes a target: verbatim code worth learning, filtered and counted."""

from __future__ import annotations

import json
import subprocess

from conftest import build_chunk_shard, run_doit
from pipeline.chunks.pieces import ELISION
from pipeline.config import Settings
from pipeline.loading import jsonl_lines

PEER = """pub struct Peer {
    pub id: u64,
}
"""
DISPLAY = """
impl std::fmt::Display for Peer {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        write!(f, "peer {}", self.id)
    }
}
"""


def shard_of(repo, sha, **settings):
    config = Settings(repo=str(repo.path), cache_dir=str(repo.path.parent / "cache"), **settings)
    return build_chunk_shard(config, sha)


def test_an_added_impl_is_one_verbatim_chunk_and_a_changed_header_is_its_own(rust_repo):
    rust_repo.commit("peer", {"src/peer.rs": PEER})
    added = rust_repo.commit("display", {"src/peer.rs": PEER + DISPLAY})
    (chunk,) = shard_of(rust_repo, added)["chunks"]
    assert chunk["kind"] == "impl" and chunk["change"] == "added"
    assert chunk["new_code"] == DISPLAY.strip("\n")         # members included, no shell
    generic = PEER + DISPLAY.replace("impl std::fmt::Display for Peer {",
                                     "impl std::fmt::Display for Peer where Peer: Sized {")
    changed = rust_repo.commit("bound", {"src/peer.rs": generic})
    (chunk,) = shard_of(rust_repo, changed)["chunks"]
    assert chunk["old_code"] == "impl std::fmt::Display for Peer"
    assert chunk["new_code"] == "impl std::fmt::Display for Peer where Peer: Sized"


def test_deletions_whitespace_and_comment_changes_are_no_targets_but_are_counted(rust_repo):
    code = "pub fn f() -> u8 {\n    1\n}\n\npub fn g() -> u8 {\n    2\n}\n"
    rust_repo.commit("base", {"src/a.rs": code})
    sha = rust_repo.commit("tidy", {"src/a.rs": (
        "pub fn f() -> u8 {\n    // the one\n    1\n}\n\npub fn g()  ->  u8 {\n      2\n}\n")})
    shard = shard_of(rust_repo, sha)
    assert shard["chunks"] == []
    assert shard["skipped"] == {"comment_only": 1, "whitespace_only": 1}
    kept = shard_of(rust_repo, sha, keep_comment_changes=True, keep_whitespace_changes=True)
    assert len(kept["chunks"]) == 2
    gone = rust_repo.commit("drop g", {"src/a.rs": "pub fn f() -> u8 {\n    1\n}\n"})
    # g is gone (nothing to write); f lost its comment (a comment-only change).
    assert shard_of(rust_repo, gone)["skipped"] == {"comment_only": 1, "deletion": 1}


def test_lines_reindented_inside_a_string_are_a_whitespace_change(rust_repo):
    manifest = '    let toml = r#"\n{0}[package]\n{0}name = "foo"\n    "#;\n'
    rust_repo.commit("base", {"tests/a.rs": "fn t() {\n" + manifest.format("    ") + "}\n"})
    sha = rust_repo.commit("indent", {"tests/a.rs": "fn t() {\n" + manifest.format("        ")
                                      + "}\n"})
    assert shard_of(rust_repo, sha)["skipped"] == {"whitespace_only": 1}
    assert len(shard_of(rust_repo, sha, keep_whitespace_changes=True)["chunks"]) == 1
    # A string's lines in another order are a change.
    moved = rust_repo.commit("swap", {"tests/a.rs": "fn t() {\n" + manifest.format("    ").replace(
        '[package]\n    name = "foo"', 'name = "foo"\n    [package]') + "}\n"})
    assert len(shard_of(rust_repo, moved)["chunks"]) == 1


def test_a_list_reflowed_with_a_trailing_comma_is_a_formatting_change(rust_repo):
    one_line = "pub fn f(a: u8, b: u8) -> (u8,) {\n    g(a, b);\n    (a,)\n}\n"
    rust_repo.commit("base", {"src/a.rs": one_line})
    reflowed = rust_repo.commit("fmt", {"src/a.rs": one_line.replace(
        "f(a: u8, b: u8)", "f(\n    a: u8,\n    b: u8,\n)").replace("g(a, b)", "g(\n        a,\n        b,\n    )")})
    assert shard_of(rust_repo, reflowed)["skipped"] == {"formatting_only": 1}
    assert len(shard_of(rust_repo, reflowed, keep_whitespace_changes=True)["chunks"]) == 1
    # A one-element tuple's comma is no trailing comma: (a,) -> (a) is a change.
    untupled = rust_repo.commit("untuple", {"src/a.rs": one_line.replace("(a,)", "(a)")})
    assert len(shard_of(rust_repo, untupled)["chunks"]) == 1


def test_a_reflow_that_reindents_a_continued_string_is_a_formatting_change(rust_repo):
    """Cargo's `cargo fmt` re-indented the lines of `\\`-continued strings as it reflowed
    their calls; Rust skips the whitespace after such a line end (not in a raw string)."""
    call = 'pub fn f() {\n    warn(1, "custom registry support via \\\nINDENTthe index is removed");\n}\n'
    rust_repo.commit("base", {"src/a.rs": call.replace("INDENT", " " * 10)})
    reflowed = rust_repo.commit("fmt", {"src/a.rs": call.replace("INDENT", " " * 9).replace(
        "warn(1, ", "warn(\n        1,\n        ").replace('removed");', 'removed",\n    );')})
    assert shard_of(rust_repo, reflowed)["skipped"] == {"formatting_only": 1}
    raw = call.replace('"custom', 'r"custom')
    rust_repo.commit("raw", {"src/a.rs": raw.replace("INDENT", " " * 10)})
    reindented = rust_repo.commit("raw fmt", {"src/a.rs": raw.replace("INDENT", " " * 9).replace(
        "warn(1, ", "warn(\n        1,\n        ").replace('removed");', 'removed",\n    );')})
    assert len(shard_of(rust_repo, reindented)["chunks"]) == 1    # a raw string's spaces count


def test_imports_only_sorted_are_a_formatting_change(rust_repo):
    imports = ["use std::rc::Rc;", "use std::fmt;", "mod peer;", "use crate::peer::Peer;"]
    code = "\n\npub fn f() -> u8 {\n    1\n}\n"
    rust_repo.commit("base", {"src/lib.rs": "\n".join(imports) + code})
    sorted_ = rust_repo.commit("sort", {"src/lib.rs": "\n".join(sorted(imports)) + code})
    assert shard_of(rust_repo, sorted_)["skipped"] == {"formatting_only": 1}
    # One import gone as well: a change.
    dropped = rust_repo.commit("drop", {"src/lib.rs": "\n".join(sorted(imports)[1:]) + code})
    assert [c["kind"] for c in shard_of(rust_repo, dropped)["chunks"]] == ["file"]


def _tests(names, attribute, status="0"):
    return "".join(f"{attribute}\nfn {name}() {{\n    run(\"{name}\").status({status});\n}}\n\n"
                   for name in names)


def test_an_edit_repeated_over_a_commits_items_is_one_target_and_counted(rust_repo):
    rust_repo.commit("base", {"tests/a.rs": _tests(["one", "two"], "#[test]"),
                              "tests/b.rs": _tests(["three", "four"], "#[test]")})
    # One mechanical edit in three items, over two files; four gets another edit too.
    sha = rust_repo.commit("cargo_test", {
        "tests/a.rs": _tests(["one", "two"], "#[cargo_test]"),
        "tests/b.rs": _tests(["three"], "#[cargo_test]") + _tests(["four"], "#[cargo_test]", "1")})
    shard = shard_of(rust_repo, sha)
    assert [c["qualname"] for c in shard["chunks"]] == ["tests::a::one", "tests::b::four"]
    assert shard["skipped"] == {"repeated_edit": 2}
    assert "#[cargo_test]" in shard["chunks"][0]["new_code"]
    kept = shard_of(rust_repo, sha, keep_repeated_edits=True)
    assert len(kept["chunks"]) == 4 and kept["skipped"] == {}


def test_an_added_item_keeps_the_comments_right_above_it(rust_repo):
    """Ripgrep's 3065a8c9c8 added `reset_sigpipe` under six lines saying why: they went to
    the file's other lines, a comment-only change, and the target had no explanation."""
    base = "//! The crate.\n\npub fn main() {}\n"
    rust_repo.commit("base", {"src/main.rs": base})
    added = ("// Rust ignores SIGPIPE by default;\n// restore it so that a closed pipe ends us.\n"
             "#[cfg(unix)]\nfn reset_sigpipe() {\n    unsafe { sigpipe() }\n}\n")
    loose = "// A note on the file, apart.\n\n"
    sha = rust_repo.commit("sigpipe", {"src/main.rs": base + "\n" + loose + added})
    shard = shard_of(rust_repo, sha)
    assert [(c["kind"], c["new_code"]) for c in shard["chunks"]] == [("fn", added.rstrip("\n"))]
    # The comment with a blank line below it is the file's: a comment-only change.
    assert shard["skipped"] == {"comment_only": 1}


def test_vendored_and_excluded_paths_are_skipped_and_counted(workdir, rust_repo):
    rust_repo.commit("base", {"src/lib.rs": "pub fn a() {}\n"})
    sha = rust_repo.commit("vendor", {"vendor/dep/src/lib.rs": "pub fn dep() {}\n",
                                      "third_party/x/lib.rs": "pub fn x() {}\n",
                                      "gen/out.rs": "pub fn generated() {}\n",
                                      "src/lib.rs": "pub fn a() {}\n\npub fn b() {}\n"})
    shard = shard_of(rust_repo, sha, exclude="gen/*")
    assert [c["path"] for c in shard["chunks"]] == ["src/lib.rs"]
    assert shard["skipped"] == {"excluded_file": 1, "vendored_file": 2}


def test_a_piece_of_a_large_added_impl_carries_its_header(rust_repo):
    methods = "".join(f"    pub fn m{i}(&self) -> u64 {{\n        self.id + {i}\n    }}\n\n"
                      for i in range(30))
    rust_repo.commit("peer", {"src/peer.rs": PEER})
    sha = rust_repo.commit("many", {"src/peer.rs": PEER + "\nimpl Peer {\n" + methods + "}\n"})
    chunks = shard_of(rust_repo, sha, max_item_chars=400)["chunks"]
    assert len(chunks) > 2 and all(c["qualname"] == "peer::impl Peer" for c in chunks)
    assert chunks[0]["new_code"].startswith("impl Peer {\n")
    for chunk in chunks[1:]:
        assert chunk["new_code"].startswith(f"impl Peer {{\n    {ELISION}\n    pub fn m")
        assert chunk["part"]


def test_a_long_run_of_docs_and_imports_is_cut_between_its_lines(rust_repo):
    """Cargo's resolver/mod.rs had 4,269 characters of module docs and imports outside its
    items: one piece (cut inside its widest `use` list, at no line start), cut at the
    limit and left out, so its added `use util::ChainError;` was lost."""
    docs = "".join(f"//! Line {i} of the module's documentation, long enough.\n" for i in range(5))
    imports = "use std::collections::{HashMap, HashSet};\n" + "".join(
        f"use crate::module_number_{i}::Thing;\n" for i in range(8))
    code = "\npub fn f() -> u8 {\n    1\n}\n"
    rust_repo.commit("base", {"src/lib.rs": docs + imports + code})
    sha = rust_repo.commit("import", {"src/lib.rs": docs + imports + "use std::fmt;\n" + code})
    shard = shard_of(rust_repo, sha, max_item_chars=500)
    assert shard["skipped"] == {}
    (chunk,) = shard["chunks"]
    assert chunk["kind"] == "file" and chunk["new_code"].endswith("use std::fmt;")
    assert "use std::fmt;" not in chunk["old_code"] and len(chunk["new_code"]) <= 500


def test_duplicate_targets_in_a_split_are_dropped_and_counted(workdir, rust_repo):
    rust_repo.commit("base", {"src/a.rs": "pub fn a() -> u8 {\n    0\n}\n"})
    # The same two texts again and again: the first add and the first change are targets.
    for number in range(3):
        rust_repo.commit(f"one {number}", {"src/a.rs": "pub fn a() -> u8 {\n    1\n}\n"})
        rust_repo.commit(f"zero {number}", {"src/a.rs": "pub fn a() -> u8 {\n    0\n}\n"})
    assert run_doit(f"repo={rust_repo.path}", "val_ratio=0", "test_ratio=0")[0] == 0
    stats = json.loads((workdir / "dataset" / "stats.json").read_text())
    assert stats["skipped"]["duplicate_target"] == 5 and stats["splits"]["train"]["chunks"] == 2
    assert run_doit(f"repo={rust_repo.path}", "val_ratio=0", "test_ratio=0",
                    "keep_duplicates=true")[0] == 0
    stats = json.loads((workdir / "dataset" / "stats.json").read_text())
    assert "duplicate_target" not in stats["skipped"] and stats["splits"]["train"]["chunks"] == 7


def test_uninformative_messages_are_counted_or_dropped_and_emails_redacted(workdir, rust_repo):
    rust_repo.commit("Add a", {"src/a.rs": "pub fn a() -> u8 {\n    0\n}\n"})
    for number in range(1, 4):
        rust_repo.commit("wip", {"src/a.rs": f"pub fn a() -> u8 {{\n    {number}\n}}\n"})
    rust_repo.commit("Make a return 9\n\nAsked by jane.doe@example.com",
                     {"src/a.rs": "pub fn a() -> u8 {\n    9\n}\n"})
    args = (f"repo={rust_repo.path}", "val_ratio=0", "test_ratio=0")
    assert run_doit(*args)[0] == 0
    stats = json.loads((workdir / "dataset" / "stats.json").read_text())
    assert stats["low_information_messages"]["train"] == 3
    rows = list(jsonl_lines(workdir / "dataset", "train"))
    assert len(rows) == 5
    assert "Asked by <EMAIL>" in rows[-1] and "example.com" not in rows[-1]
    assert run_doit(*args, "message_filter=drop")[0] == 0
    rows = list(jsonl_lines(workdir / "dataset", "train"))
    assert [json.loads(row)["message"].split("\n")[0] for row in rows] == [
        "Add a", "Make a return 9"]


def test_the_repository_name_comes_from_the_origin_remote(workdir, sample_repo):
    subprocess.run(["git", "-C", str(sample_repo), "remote", "set-url", "origin",
                    "git@github.com:garden/planner.git"], check=True)
    assert run_doit(f"repo={sample_repo}")[0] == 0
    manifest = json.loads((workdir / "dataset" / "manifest.json").read_text())
    assert manifest["repositories"][0]["name"] == "garden/planner"
    row = json.loads(next(jsonl_lines(workdir / "dataset", "train")))
    assert row["text"].startswith("<reponame>garden/planner<filename>")
    assert run_doit(f"repo={sample_repo}", "repo_name=acme/garden")[0] == 0
    row = json.loads(next(jsonl_lines(workdir / "dataset", "train")))
    assert row["text"].startswith("<reponame>acme/garden<filename>")


def test_the_default_tokenizer_is_trained_on_the_last_train_commit(workdir, sample_repo):
    assert run_doit(f"repo={sample_repo}")[0] == 0
    manifest = json.loads((workdir / "dataset" / "manifest.json").read_text())
    splits = manifest["splits"]
    assert manifest["tokenizer"]["trained_on_commit"] == splits["train"]["last_commit"]
    assert splits["train"]["last_date"] < splits["val"]["first_date"]


def test_a_piece_of_a_large_const_carries_its_own_first_line(rust_repo):
    rows = "".join(f"    ({i}, \"value number {i}\"),\n" for i in range(60))
    table = "pub const TABLE: &[(u32, &str)] = &[\n" + rows + "];\n"
    sha = rust_repo.commit("table", {"src/table.rs": table})
    chunks = shard_of(rust_repo, sha, max_item_chars=600)["chunks"]
    assert len(chunks) > 1
    for chunk in chunks[1:]:
        assert chunk["new_code"].startswith(
            f"pub const TABLE: &[(u32, &str)] = &[\n    {ELISION}\n    (")
