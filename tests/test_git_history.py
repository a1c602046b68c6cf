"""Listing history with one `git log --raw -z`: order, changes, odd paths and encodings."""

from __future__ import annotations

import shutil
import subprocess

from pipeline.config import Settings
from pipeline.git.commit_list import build_commit_list
from pipeline.git.history import (BlobReader, TreeReader, list_commits, list_tree,
                                  open_repository, resolve_ref, tree_changes)
from pipeline.rust.parsing import RecentParses
from pipeline.rust.symbols import SymbolIndex


def listed(repo):
    git_repo = open_repository(str(repo.path))
    return list_commits(git_repo, resolve_ref(git_repo, "HEAD"))


def test_root_commit_files_are_added_and_order_is_committer_time(rust_repo):
    first = rust_repo.commit("root", {"src/a.rs": "fn a() {}\n", "notes.txt": "x\n"})
    second = rust_repo.commit("second", {"src/a.rs": "fn a() { 1; }\n", "src/b.rs": "fn b() {}\n"})
    commits = listed(rust_repo)
    assert [c.sha for c in commits] == [first, second]
    assert [(c.status, c.new_path) for c in commits[0].changes] == [("A", "src/a.rs")]
    assert sorted((c.status, c.new_path) for c in commits[1].changes) == [
        ("A", "src/b.rs"), ("M", "src/a.rs")]
    assert commits[1].parents == (first,) and commits[1].committer_time > commits[0].committer_time


def test_commits_with_equal_times_keep_topological_order(rust_repo):
    shas = []
    for index in range(4):
        rust_repo.time = 1_700_000_000 - 3600          # the same timestamp for every commit
        shas.append(rust_repo.commit(f"c{index}", {"a.rs": f"fn f{index}() {{}}\n"}))
    assert [c.sha for c in listed(rust_repo)] == shas


def test_non_utf8_paths_and_latin1_messages_are_kept(rust_repo):
    name = b"caf\xe9.rs"
    (rust_repo.path / name.decode("latin-1")).parent.mkdir(parents=True, exist_ok=True)
    with open(bytes(rust_repo.path) + b"/" + name, "wb") as handle:
        handle.write(b"fn cafe() {}\n")
    message = rust_repo.path.parent / "message.txt"
    message.write_bytes("Caf\xe9 au lait\n".encode("latin-1"))
    rust_repo.git("add", "-A")
    subprocess.run(["git", "-C", str(rust_repo.path), "-c", "i18n.commitEncoding=ISO-8859-1",
                    "-c", "user.name=T", "-c", "user.email=t@example.com", "commit", "-q",
                    "-F", str(message)], check=True)
    (commit,) = listed(rust_repo)
    assert commit.message == "Café au lait\n"
    assert len(commit.changes) == 1 and commit.changes[0].new_path == "caf\ufffd.rs"
    reader = BlobReader(open_repository(str(rust_repo.path)))
    assert reader.read(commit.changes[0].new_blob) == b"fn cafe() {}\n"
    assert reader.read("1" * 40) is None


def test_tree_changes_between_commits_match_the_difference_of_their_listed_trees(rust_repo):
    first = rust_repo.commit("one", {"src/a.rs": "fn a() {}\n", "src/b.rs": "fn b() {}\n",
                                     "Cargo.toml": "[package]\nname = \"x\"\n"})
    (rust_repo.path / "src" / "link.rs").symlink_to("a.rs")
    second = rust_repo.commit("two", {"src/a.rs": "fn a() { 1; }\n", "src/b.rs": None,
                                      "src/c.rs": "fn c() {}\n", "notes.txt": "x\n"})
    (rust_repo.path / "src" / "link.rs").unlink()
    third = rust_repo.commit("three", {"src/link.rs": "fn l() {}\n"})
    repo = open_repository(str(rust_repo.path))
    suffixes = (b".rs", b"Cargo.toml")
    for old, new in ((first, second), (second, third), (first, third), (third, first)):
        before, after = list_tree(repo, old, suffixes), list_tree(repo, new, suffixes)
        expected = {path: after.get(path) for path in before.keys() | after.keys()
                    if before.get(path) != after.get(path)}
        changed = {path: blob for path, blob in tree_changes(repo, old, new, suffixes).items()
                   if before.get(path) != blob}
        assert changed == expected
    # A symlink is not a file of the index; the regular file that replaces it is.
    assert tree_changes(repo, second, third, suffixes)["src/link.rs"] == \
        list_tree(repo, third, suffixes)["src/link.rs"]


def test_a_list_extended_after_a_pull_is_the_list_of_a_full_listing(workdir, rust_repo):
    """After a pull the commit list is the last one plus the new commits, read alone; with
    a merged branch whose commits are older than the last list's head, a rename and
    commits sharing a timestamp, it must equal listing the whole history."""
    settings = Settings(repo=str(rust_repo.path))
    repo = open_repository(str(rust_repo.path))
    rust_repo.commit("root", {"src/a.rs": "fn a() {}\n"})
    rust_repo.git("checkout", "-q", "-b", "side")
    rust_repo.commit("side work", {"src/side.rs": "fn side() {}\n"})   # older than main's next
    rust_repo.git("checkout", "-q", "main")
    rust_repo.commit("main work", {"src/a.rs": "fn a() { 1; }\n"})
    first = build_commit_list(settings, repo)
    assert first["head"] == resolve_ref(repo, "HEAD")
    rust_repo.git("merge", "-q", "--no-ff", "-m", "merge side", "side")
    rust_repo.git("mv", "src/a.rs", "src/renamed.rs")
    rust_repo.commit("rename", {})
    rust_repo.time -= 3600                                    # the same second as the rename
    rust_repo.commit("same time", {"src/b.rs": "fn b() {}\n"})
    extended = build_commit_list(settings, repo)
    assert "side work" in [commit["message"].strip() for commit in extended["commits"]]

    shutil.rmtree(settings.cache)                             # no earlier list: list it all
    full = build_commit_list(settings, repo)
    assert extended["commits"] == full["commits"]
    assert [c["sha"] for c in full["commits"]] == [c.sha for c in listed(rust_repo)]


def test_tree_reader_gives_tree_changes_that_change_the_listed_tree_in_git_order(rust_repo):
    """The symbol index's diffs come from libgit2: the same files, blobs and order as
    tree_changes, less the changes list_tree does not see (modes, symlinks)."""
    first = rust_repo.commit("one", {"src/a.rs": "fn a() {}\n", "src/b.rs": "fn b() {}\n",
                                     "src/x.rs": "fn x() {}\n", "src/m/c.rs": "fn c() {}\n",
                                     "Cargo.toml": "[package]\nname = \"x\"\n"})
    (rust_repo.path / "src" / "link.rs").symlink_to("a.rs")
    (rust_repo.path / "src" / "a.rs").chmod(0o755)
    second = rust_repo.commit("two", {"src/b.rs": None, "src/m-n.rs": "fn n() {}\n",
                                      "src/m/c.rs": "fn c() { 1; }\n", "src/x.rs": None,
                                      "src/x.rs/y.rs": "fn y() {}\n", "notes.txt": "x\n"})
    (rust_repo.path / "src" / "link.rs").unlink()
    third = rust_repo.commit("three", {"src/link.rs": "fn l() {}\n", "src/m/c.rs": None,
                                       "src/m.rs": "fn m() {}\n"})
    repo = open_repository(str(rust_repo.path))
    trees, suffixes = TreeReader(repo), (b".rs", b"Cargo.toml")
    for old, new in ((first, second), (second, third), (first, third), (third, first),
                     (second, second)):
        before = list_tree(repo, old, suffixes)
        expected = {path: blob for path, blob in tree_changes(repo, old, new, suffixes).items()
                    if before.get(path) != blob}
        changed = trees.changes(old, new, suffixes)
        assert list(changed.items()) == list(expected.items())
    assert trees.changes(first, "1" * 40, suffixes) is None     # no such object: ask git


def _index_view(index, paths=()) -> tuple:
    """What the index says of its tree, and the crate of each of paths (present or not: a
    chunk's new file is asked for at its parent commit)."""
    definitions = {name: {path: defs for path, defs in by_path.items() if defs}
                   for name, by_path in index.by_name.items()}
    return (index.tree, index.crate_dirs, index.modules,
            {name: found for name, found in definitions.items() if found},
            {path: index.crate_of(path) for path in [*index.tree, *paths]})


def test_a_symbol_index_moved_along_history_equals_one_built_at_each_commit(rust_repo, tmp_path):
    """Moved by its diffs (crates and modules updated only where files came, went or a
    manifest changed), in any order, the index describes each commit as one listed there."""
    manifest = '[package]\nname = "{}"\nversion = "{}"\n'
    shas = [
        rust_repo.commit("two crates", {
            "Cargo.toml": manifest.format("app", 1), "src/main.rs": "fn main() {}\n",
            "src/lib.rs": "pub struct App;\n", "net/Cargo.toml": manifest.format("net", 1),
            "net/src/lib.rs": "pub struct Peer;\n", "net/src/peer.rs": "pub fn dial() {}\n",
            # A fixture of the net crate: its module path is the crate root's, not its file.
            "net/fixtures/bar/src/lib.rs": "pub struct Bar;\n"}),
        rust_repo.commit("a module moves into a directory, a file comes", {
            "net/src/peer.rs": None, "net/src/peer/mod.rs": "pub fn dial() {}\n",
            "src/util/mod.rs": "pub fn help() {}\n"}),
        rust_repo.commit("a version bump", {"net/Cargo.toml": manifest.format("net", 2)}),
        rust_repo.commit("a nested crate", {
            "net/tls/Cargo.toml": manifest.format("tls", 1), "net/tls/src/lib.rs":
            "pub struct Conn;\n", "net/tls/src/peer.rs": "pub fn dial() {}\n"}),
        rust_repo.commit("two files give one module; a crate renamed", {
            "src/util.rs": "pub fn other() {}\n", "net/Cargo.toml":
            manifest.format("network", 2), "src/lib.rs": None,
            "src/domain/mod.rs": "pub fn d() {}\n", "src/domain.rs": "pub fn e() {}\n"}),
        rust_repo.commit("the manifests go", {"Cargo.toml": None, "net/Cargo.toml": None,
                                              "net/tls/Cargo.toml": None}),
        # No manifest changes: the module's other file takes over without a remap.
        rust_repo.commit("the module's chosen file goes", {"src/util.rs": None}),
    ]
    repo = open_repository(str(rust_repo.path))
    settings = Settings(repo=str(rust_repo.path), cache_dir=str(tmp_path / "cache"))

    def index():
        return SymbolIndex(repo, BlobReader(repo), RecentParses(), settings.cache,
                           settings.max_file_bytes)

    moved = index()
    every_path = sorted({path for sha in shas for path in list_tree(repo, sha, (b".rs",))})
    for order in (shas, shas[::-1], [shas[0], shas[4], shas[1], shas[5], shas[3], shas[2]]):
        for sha in order:
            moved.move_to(sha)
            fresh = index()
            fresh.move_to(sha)
            assert _index_view(moved, every_path) == _index_view(fresh, every_path), sha
    moved.move_to(shas[3])
    assert moved.modules[("net", "")] == "net/src/lib.rs"
    assert moved.modules[("net/tls", "peer")] == "net/tls/src/peer.rs"
    assert moved.crate_of("net/tls/src/peer.rs") == "net/tls"
    assert moved.crate_of("net/src/peer/mod.rs") == "net"
    moved.move_to(shas[4])
    assert moved.crate_dirs == {"app": "", "network": "net", "tls": "net/tls"}
    # by path, util.rs before util/mod.rs, though util/mod.rs came first
    assert moved.modules[("", "util")] == "src/util.rs"
    assert moved.modules[("", "domain")] == "src/domain.rs"     # no main.rs, for all its name
    assert moved.modules[("", "")] == "src/main.rs"              # lib.rs gone
    moved.move_to(shas[6])
    assert moved.modules[("", "util")] == "src/util/mod.rs"
    moved.move_to(None)
    assert _index_view(moved) == ({}, {}, {}, {}, {})
