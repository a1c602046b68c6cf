"""Listing history with one `git log --raw -z`: order, changes, odd paths and encodings."""

from __future__ import annotations

import subprocess

from pipeline.git_history import BlobReader, list_commits, open_repository, resolve_ref


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
