"""Ctrl-C and SIGTERM, a worker killed, partial clones, git failures, a repository that
changes while it is built, a full or read-only disk, bare repositories and linked
worktrees: each tried for real, with `doit` in a subprocess where signals are involved.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import RustRepo, chdir, run_doit, split_outputs
from pipeline import store
from pipeline.config import Settings
from pipeline.git import partial
from pipeline.git.commit_list import current_commit_list
from pipeline.git.history import open_repository
from pipeline.git.sample_repo import START_TIME, extend_sample_repository, git
from pipeline.run import interrupts
from test_robustness import children, doit, doit_command, stats
from test_session import lock_is_free

DOIT_SCRIPT = Path(sys.executable).parent / "doit"     # the console script pip installed


def outputs(workdir: Path) -> dict:
    return outputs_in(workdir / "dataset")


def outputs_in(dataset: Path) -> dict:
    return {**split_outputs(dataset), "tokenizer.json": (dataset / "tokenizer.json").read_bytes()}


def shards(workdir: Path, stage: str) -> int:
    return len(list((workdir / "cache" / stage).rglob("*.msgpack")))


def env_for(workdir: Path) -> dict:
    return {**os.environ, "PIPELINE_CONFIG_DIR": str(workdir)}


@pytest.fixture(scope="module")
def history(tmp_path_factory, sample_template):
    """The sample repository with 40 more commits (enough for a worker pool) as `repo`, and
    the outputs of one uninterrupted build of it."""
    root = tmp_path_factory.mktemp("history")
    repo = root / "repo"
    git(root, "clone", "-q", str(sample_template), str(repo))
    extend_sample_repository(repo, 40)
    reference = root / "reference"
    reference.mkdir()
    result = doit(reference, f"repo={repo}")
    assert result.returncode == 0, result.stdout + result.stderr
    return repo, outputs(reference)


def live_in_group(group: int) -> list:
    """The processes of a process group that have not ended (zombies have: they only wait
    for their parent, or init, to collect their status)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                state, _, pgrp = (entry / "stat").read_text().rsplit(")", 1)[1].split()[:3]
            except OSError:
                continue
            if int(pgrp) == group and state != "Z":
                found.append(int(entry.name))
    return found


# (what the build is doing, how to see it from its files, the signal, sent to the whole
# process group as a terminal's Ctrl-C does or to the doit process alone as `kill` does,
# and whether through the console script instead of `python -m doit`)
STOPS = [
    ("listing commits", lambda w, at_start: (w / "cache" / ".lock").exists(),
     signal.SIGINT, True, False),
    ("writing chunk shards", lambda w, at_start: shards(w, "chunks") >= at_start["chunks"] + 4,
     signal.SIGINT, True, True),
    ("writing token shards", lambda w, at_start: shards(w, "tokens") >= at_start["tokens"] + 4,
     signal.SIGTERM, False, False),
    ("merging", lambda w, at_start: (w / "dataset").exists(), signal.SIGINT, True, False),
]


def stop_a_build(target: Path, repo: Path, moment, signum, whole_group: bool, script: bool):
    """Start `doit`, send signum once moment(target) holds; returns (the finished process,
    its stdout + stderr, seconds from the signal to its exit, and to its group being gone)."""
    command = doit_command(target, f"repo={repo}")
    if script:
        command = [str(DOIT_SCRIPT), *command[3:]]
    at_start = {stage: shards(target, stage) for stage in ("chunks", "tokens")}
    process = subprocess.Popen(command, env=env_for(target), stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, start_new_session=True)
    deadline = time.monotonic() + 120
    while process.poll() is None and not moment(target, at_start) and time.monotonic() < deadline:
        time.sleep(0.002)
    assert process.poll() is None, "the build ended before the moment to stop it"
    sent = time.monotonic()
    (os.killpg if whole_group else os.kill)(process.pid, signum)
    out, err = process.communicate(timeout=60)
    exited = time.monotonic() - sent
    while live_in_group(process.pid) and time.monotonic() - sent < 10:
        time.sleep(0.01)
    return process, out + err, exited, time.monotonic() - sent


def test_ctrl_c_and_sigterm_stop_at_once_with_one_line_and_the_next_run_completes(
        workdir, history):
    repo, expected = history
    for moment, seen, signum, whole_group, script in STOPS:
        process, output, exited, gone = stop_a_build(workdir, repo, seen, signum, whole_group,
                                                     script)
        # Ctrl-C ends it by SIGINT, as a shell expects; SIGTERM with status 128 + 15.
        assert process.returncode == (-signum if signum == signal.SIGINT else 128 + signum), (
            moment, output)
        assert exited < 2.0, f"{moment}: {exited:.2f}s from the signal to the exit"
        assert gone < 2.0, f"{moment}: workers or git processes lived {gone:.2f}s on"
        assert output.count(interrupts.MESSAGE) == 1, (moment, output)
        assert "Traceback" not in output and "done in" not in output, (moment, output)
        assert lock_is_free(workdir / "cache")
        assert not (workdir / "dataset" / "manifest.json").exists()
    result = doit(workdir, f"repo={repo}")
    assert result.returncode == 0, result.stdout + result.stderr
    assert outputs(workdir) == expected
    assert stats(workdir)["missing_objects"] == []        # no blob read by a dying process


def test_a_killed_worker_stops_the_build_with_a_message_and_the_next_run_completes(
        workdir, history):
    repo, expected = history
    process = subprocess.Popen(doit_command(workdir, f"repo={repo}"), env=env_for(workdir),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while process.poll() is None and shards(workdir, "chunks") < 4 and time.monotonic() < deadline:
        time.sleep(0.002)
    workers = [pid for pid in children(process.pid)
               if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes()]
    assert workers, "the build ended, or used no worker pool, before a worker could be killed"
    os.kill(workers[0], signal.SIGKILL)                   # as the out-of-memory killer does
    out, err = process.communicate(timeout=60)
    assert process.returncode != 0
    assert "a worker process of the build ended abruptly" in out
    assert "Traceback" not in out + err
    result = doit(workdir, f"repo={repo}")
    assert result.returncode == 0, result.stdout + result.stderr
    assert outputs(workdir) == expected


def test_a_repository_that_changes_during_a_build_gives_the_listed_history_then_the_new_one(
        workdir, history):
    source, expected = history
    repo = workdir / "moving" / "repo"
    git(workdir, "clone", "-q", str(source), str(repo))
    # Rows carry the origin remote's name: the reference's, not the clone it came from.
    git(repo, "remote", "set-url", "origin", git(source, "remote", "get-url", "origin").strip())
    listed_head = git(repo, "rev-parse", "HEAD").strip()
    process = subprocess.Popen(doit_command(workdir, f"repo={repo}"), env=env_for(workdir),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while process.poll() is None and shards(workdir, "chunks") < 4 and time.monotonic() < deadline:
        time.sleep(0.002)
    assert process.poll() is None, "the build ended before the repository could change"
    git(repo, "reset", "-q", "--hard", "HEAD~2")             # a force-push drops two commits,
    (repo / "crates/geometry/src/rewritten.rs").write_text("pub fn rewritten() {}\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "Rewritten", time=START_TIME + 69 * 86_400)
    extend_sample_repository(repo, 2)                        # and adds three new ones
    out, err = process.communicate(timeout=120)
    assert process.returncode == 0, out + err
    manifest = json.loads((workdir / "dataset" / "manifest.json").read_text())
    assert manifest["repositories"][0]["head"] == listed_head
    assert outputs(workdir) == expected

    result = doit(workdir, f"repo={repo}")
    assert result.returncode == 0, result.stdout + result.stderr
    manifest = json.loads((workdir / "dataset" / "manifest.json").read_text())
    assert manifest["repositories"][0]["head"] == git(repo, "rev-parse", "HEAD").strip()
    assert "built 3 chunk and 3 token shards of 72 commits" in result.stdout


# --- partial clones -----------------------------------------------------------------------

def serve_filtered(workdir: Path, source: Path) -> Path:
    """A bare copy of source that answers the filtered fetches of partial clones."""
    origin = workdir / "origin.git"
    git(workdir, "clone", "-q", "--bare", str(source), str(origin))
    git(origin, "config", "uploadpack.allowFilter", "true")
    return origin


def partial_clone(origin: Path, path: Path, blob_filter: str) -> Path:
    git(origin.parent, "clone", "-q", f"--filter={blob_filter}", "--no-local",
        f"file://{origin}", str(path))
    return path


def test_a_partial_clone_with_its_remote_builds_what_a_full_clone_builds(workdir,
                                                                          sample_template):
    origin = serve_filtered(workdir, sample_template)
    clone = partial_clone(origin, workdir / "partial" / "repo", "blob:none")
    opened = open_repository(str(clone))
    assert partial.missing_objects(opened, "HEAD"), "the clone lacks no blob"
    opened.close()
    full = workdir / "full" / "repo"
    git(workdir, "clone", "-q", str(sample_template), str(full))
    built = {}
    for name, repo in (("partial", clone), ("full", full)):
        with chdir(repo.parent):              # one name: the two origins differ
            code, record = run_doit(f"repo={repo}", "repo_name=garden/sample")
            assert code == 0 and not record.notes, record.notes
            built[name] = outputs(repo.parent)
    assert built["partial"] == built["full"]
    assert json.loads((clone.parent / "dataset" / "stats.json").read_text())[
        "missing_objects"] == []


def big_rust(name: str, version: int) -> str:
    """A Rust file over 1 KB (left out of a `blob:limit=1k` clone)."""
    return "".join(f"pub fn {name}_{i}() -> u32 {{\n    {i * version}\n}}\n" for i in range(60))


def test_a_partial_clone_without_its_remote_builds_lists_what_is_missing_and_finds_renames(
        workdir, rust_repo):
    rust_repo.commit("base", {"src/small.rs": "pub fn small() -> u8 {\n    1\n}\n",
                              "src/big.rs": big_rust("big", 1)})
    rust_repo.commit("grow", {"src/big.rs": big_rust("big", 2)})
    rust_repo.git("mv", "src/small.rs", "src/renamed.rs")
    rust_repo.commit("rename small, replace big", {
        "src/renamed.rs": "pub fn small() -> u8 {\n    2\n}\n", "src/big.rs": None,
        "src/huge.rs": big_rust("huge", 3)})
    lost = [git(rust_repo.path, "rev-parse", f"{rev}:src/big.rs").strip()
            for rev in ("HEAD~2", "HEAD~1")]                # not in HEAD: not checked out
    origin = serve_filtered(workdir, rust_repo.path)
    clone = partial_clone(origin, workdir / "clone", "blob:limit=1k")
    origin.rename(workdir / "gone.git")                      # the remote is unreachable

    started = time.monotonic()
    result = doit(workdir, f"repo={clone}")
    assert result.returncode == 0, result.stdout + result.stderr
    assert time.monotonic() - started < 60
    assert "is a partial clone that lacks 2 Rust or Cargo.toml file versions" in result.stdout
    assert "does not appear to be a git repository" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr
    assert stats(workdir)["missing_objects"] == sorted(lost)
    assert stats(workdir)["skipped"]["missing_object"] >= 2
    last = current_commit_list(Settings(repo=str(clone)))["commits"][-1]
    assert sorted((c[0], c[5], c[6]) for c in last["changes"]) == [
        ("A", "src/huge.rs", "src/huge.rs"), ("D", "src/big.rs", "src/big.rs"),
        ("R", "src/small.rs", "src/renamed.rs")]


def test_a_partial_clone_whose_remote_does_not_answer_waits_a_bounded_time(
        workdir, sample_template, monkeypatch):
    origin = serve_filtered(workdir, sample_template)
    clone = partial_clone(origin, workdir / "clone", "blob:none")
    git(clone, "config", "protocol.ext.allow", "always")
    git(clone, "config", "remote.origin.url", "ext::sleep 30")   # connects, never answers
    monkeypatch.setattr(partial, "STALL_SECONDS", 1)
    started = time.monotonic()
    code, record = run_doit(f"repo={clone}")
    assert code == 0
    assert time.monotonic() - started < 15
    assert any("the remote gave nothing for 1 s" in note for note in record.notes), record.notes


# --- git failures, bare repositories, linked worktrees ---------------------------------------

def test_a_failing_git_command_is_one_paragraph_with_gits_error_and_not_its_output(workdir):
    repo = RustRepo(workdir / "damaged")
    for number in range(1, 4):
        repo.commit(f"commit number {number}", {f"src/f{number}.rs": f"pub fn f{number}() {{}}\n"})
    tree = git(repo.path, "rev-parse", "HEAD~1^{tree}").strip()
    (repo.path / ".git" / "objects" / tree[:2] / tree[2:]).unlink()
    result = doit(workdir, f"repo={repo.path}")
    assert result.returncode != 0
    output = result.stdout + result.stderr
    [line] = [line for line in output.splitlines() if "git failed" in line]
    assert f"`git -C {repo.path} -c core.quotePath=false log " in line
    assert f"fatal: unable to read tree {tree}" in line and "run `doit` again" in line
    assert "Traceback" not in output
    assert "commit number 3" not in output and ":100644" not in output   # none of git's stdout


def test_a_bare_repository_and_a_linked_worktree_build_like_a_clone(workdir, sample_template):
    clone = workdir / "clone" / "repo"
    bare = workdir / "bare" / "repo"
    linked = workdir / "linked" / "repo"
    git(workdir, "clone", "-q", str(sample_template), str(clone))
    git(workdir, "clone", "-q", "--bare", str(sample_template), str(bare))
    git(clone, "worktree", "add", "-q", "-b", "linked", str(linked))
    built = {}
    for repo in (clone, bare, linked):
        with chdir(repo.parent):
            assert run_doit(f"repo={repo}")[0] == 0
            built[repo] = outputs(repo.parent)
    assert built[bare] == built[clone] and built[linked] == built[clone]


# --- a full disk, a read-only dataset directory ------------------------------------------

@contextlib.contextmanager
def mounted_tmpfs(path: Path, options: str):
    """A tmpfs at path for the test's duration; the test is skipped where none can be
    mounted (not root, or in a container without the right)."""
    path.mkdir(parents=True)
    try:
        result = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)],
                                capture_output=True, text=True)
    except FileNotFoundError:
        pytest.skip("no mount command: a full or read-only disk is tried on a small tmpfs")
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs ({result.stderr.strip()}): a full or read-only "
                    "disk is tried on a small tmpfs, which needs root")
    try:
        yield path
    finally:
        subprocess.run(["umount", str(path)], check=True)


def stops_with_one_paragraph(workdir: Path, args: list, reason: str) -> None:
    """doit fails with one line that says it could not write, and why; no traceback."""
    result = doit(workdir, *args)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    [line] = [line for line in output.splitlines() if "could not write or read" in line]
    assert reason in line and "Traceback" not in output


def remount(path: Path, options: str) -> None:
    subprocess.run(["mount", "-o", f"remount,{options}", str(path)], check=True)


@pytest.mark.parametrize("setting", ["cache_dir", "dataset_dir"])
def test_a_full_disk_stops_with_one_paragraph_and_the_run_after_freeing_space_completes(
        workdir, history, setting):
    repo, expected = history
    with mounted_tmpfs(workdir / "small", "size=1m") as small:
        args = [f"repo={repo}", f"{setting}={small}"]
        stops_with_one_paragraph(workdir, args, "No space left on device")
        for record in small.rglob("*.msgpack"):               # only whole records are there
            assert store.read_record(record) is not None, record
        assert not (small / "manifest.json").exists() and not list(small.glob(".*.tmp"))
        remount(small, "size=64m")
        result = doit(workdir, *args)
        assert result.returncode == 0, result.stdout + result.stderr
        dataset = small if setting == "dataset_dir" else workdir / "dataset"
        assert outputs_in(dataset) == expected


def test_a_read_only_dataset_dir_stops_with_one_paragraph_and_builds_once_writable(
        workdir, history):
    repo, expected = history
    with mounted_tmpfs(workdir / "readonly", "size=16m,ro") as readonly:
        args = [f"repo={repo}", f"dataset_dir={readonly}"]
        stops_with_one_paragraph(workdir, args, "Read-only file system")
        remount(readonly, "rw")
        result = doit(workdir, *args)
        assert result.returncode == 0, result.stdout + result.stderr
        assert outputs_in(readonly) == expected
