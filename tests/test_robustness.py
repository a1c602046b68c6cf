"""Messy histories, damaged caches, interrupted and concurrent runs, bad usage.

Cases covered elsewhere: root commits, non-UTF-8 paths and Latin-1 messages
(test_git_history); merges, renames, symlinks, generated files, syntax errors and conflict
markers (test_chunking); bad repo=, ref= and settings (test_cli); Ctrl-C and SIGTERM, a
killed worker, partial clones, git failures, a repository changing mid-build, a full or
read-only disk, bare repositories and worktrees (test_robustness_interrupts).
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import run_doit, split_outputs
from pipeline.chunks import shard as chunk_shard
from pipeline.chunks.shard import chunk_shard_path
from pipeline.config import Settings
from pipeline.git.commit_list import current_commit_list
from pipeline.git.sample_repo import extend_sample_repository, git
from pipeline.loading import load_tensors
from pipeline.merge import outputs
from pipeline.rust import syntax
from pipeline.tokens import segments
from pipeline.tokens.segments import token_shard_path
from pipeline.tokens.tokenizer import current_tokenizer_info

DODO = Path(__file__).resolve().parents[1] / "dodo.py"


def doit_command(workdir, *args):
    return [sys.executable, "-m", "doit", "-f", str(DODO), "-d", str(workdir), *args]


def doit(workdir, *args):
    env = {**os.environ, "PIPELINE_CONFIG_DIR": str(workdir)}
    return subprocess.run(doit_command(workdir, *args), capture_output=True, text=True,
                          env=env, timeout=300)


def tensors(workdir):
    return split_outputs(workdir / "dataset")


def built(record, stage):
    """The commits whose shards of stage this run built."""
    return record.built_shas.get(stage, [])


def stats(workdir):
    return json.loads((workdir / "dataset" / "stats.json").read_text())


def test_submodules_mode_changes_binary_files_and_empty_commits_are_counted(workdir, rust_repo):
    rust_repo.commit("base", {"src/a.rs": "pub fn a() {}\n"})
    (rust_repo.path / "src" / "a.rs").chmod(0o755)
    rust_repo.commit("mode only", {})
    rust_repo.commit("binary", {"src/blob.rs": b"\x00\x01\x02 not rust\n"})
    rust_repo.commit("empty", {})
    commit = git(rust_repo.path, "rev-parse", "HEAD").strip()
    git(rust_repo.path, "update-index", "--add", "--cacheinfo", f"160000,{commit},vendored.rs")
    rust_repo.git("commit", "-q", "-m", "submodule")             # index only: no add -A
    assert run_doit(f"repo={rust_repo.path}")[0] == 0
    skipped = stats(workdir)["skipped"]
    assert skipped["mode_only_change"] == 1 and skipped["binary_file"] == 1
    assert skipped["submodule"] == 1 and skipped["commit_without_rust_changes"] == 1


def test_a_shallow_clone_says_where_history_starts_and_builds(workdir, sample_template):
    clone = workdir / "shallow"
    git(workdir, "clone", "-q", "--depth", "6", f"file://{sample_template}", str(clone))
    result = doit(workdir, f"repo={clone}")
    assert result.returncode == 0, result.stdout + result.stderr
    boundary = (clone / ".git" / "shallow").read_text().split()
    assert f"history starts at {boundary[0]}" in result.stdout
    assert "git fetch --unshallow" in result.stdout
    manifest = json.loads((workdir / "dataset" / "manifest.json").read_text())
    assert manifest["repositories"][0]["shallow_boundary"] == boundary
    assert sum(split["commits"] for split in manifest["splits"].values()) == 6


def test_a_missing_object_is_skipped_with_its_sha_and_the_rest_builds(workdir, rust_repo):
    rust_repo.commit("a", {"src/a.rs": "pub fn a() {}\n"})
    rust_repo.commit("b", {"src/b.rs": "pub fn b() -> u8 {\n    1\n}\n"})
    rust_repo.commit("c", {"src/c.rs": "pub fn c() {}\n"})
    lost = git(rust_repo.path, "rev-parse", "HEAD~1:src/b.rs").strip()
    (rust_repo.path / ".git" / "objects" / lost[:2] / lost[2:]).unlink()
    assert run_doit(f"repo={rust_repo.path}")[0] == 0
    result = stats(workdir)
    assert result["skipped"]["missing_object"] >= 1 and result["missing_objects"] == [lost]
    assert result["chunks_by_kind"]["fn"] >= 2                    # a and c still there


def test_a_rewritten_history_equals_a_clean_build_and_gc_removes_the_old_shards(
        workdir, sample_repo):
    assert run_doit(f"repo={sample_repo}")[0] == 0
    pinned = json.loads((workdir / "dataset" / "manifest.json").read_text())[
        "tokenizer"]["trained_on_commit"]
    git(sample_repo, "reset", "-q", "--hard", "HEAD~4")
    extend_sample_repository(sample_repo, 2)                     # a force-pushed history
    code, record = run_doit(f"repo={sample_repo}")
    assert code == 0 and len(built(record, "chunks")) == 2
    rebuilt = tensors(workdir)
    chunk_files = len(list((workdir / "cache" / "chunks").rglob("*.msgpack")))
    obsolete = workdir / "cache" / "analysis" / "ab" / "ab12.msgpack"   # an older version's
    obsolete.parent.mkdir(parents=True)
    obsolete.write_bytes(b"x")
    assert run_doit(f"repo={sample_repo}", "gc")[0] == 0
    assert len(list((workdir / "cache" / "chunks").rglob("*.msgpack"))) == chunk_files - 4
    assert not obsolete.exists() and any((workdir / "cache" / "definitions").rglob("*.msgpack"))
    code, record = run_doit(f"repo={sample_repo}")
    assert code == 0 and built(record, "chunks") == [] and "merge" not in record.executed

    clean = workdir / "clean"
    clean.mkdir()
    os.chdir(clean)
    assert run_doit(f"repo={sample_repo}", f"tokenizer_commit={pinned}")[0] == 0
    assert tensors(clean) == rebuilt


def test_garbage_and_huge_files_never_crash_or_yield_empty_chunks(workdir, rust_repo):
    rust_repo.commit("base", {"src/ok.rs": "pub fn ok() {}\n"})
    rust_repo.commit("garbage", {"src/junk.rs": "}}}{{{ fn fn struct ;;; <<<<<<< >>>>>>> \xe9\n"})
    rust_repo.commit("one long line", {"src/line.rs": "pub const X: &str = \"" + "a" * 300_000
                                       + "\";\n"})
    rust_repo.commit("huge", {"src/huge.rs": "pub fn f() {}\n" * 100_000})
    assert run_doit(f"repo={rust_repo.path}", "max_file_bytes=1000000")[0] == 0
    result = stats(workdir)
    assert result["skipped"]["oversize_file"] == 1
    assert result["files_flagged"]["syntax_error_fallback"] == 1
    train = load_tensors(workdir / "dataset", "train")
    for paths in train["path"]:
        assert "src/huge.rs" not in paths


def test_damaged_cache_records_are_rebuilt_and_reported(workdir, sample_repo, capfd):
    assert run_doit(f"repo={sample_repo}")[0] == 0
    before = tensors(workdir)
    settings = Settings(repo=str(sample_repo))
    info = current_tokenizer_info(settings)
    sha = current_commit_list(settings)["commits"][5]["sha"]
    chunk = chunk_shard_path(settings, sha)
    chunk.write_bytes(chunk.read_bytes()[:40])                    # truncated ...
    token_shard_path(settings, sha, info["hash"]).unlink()  # ... and needed again
    token = sorted(Path("cache/tokens").rglob("*.msgpack"))[7]
    data = bytearray(token.read_bytes())
    data[len(data) // 2] ^= 0x10                                  # one flipped bit
    token.write_bytes(bytes(data))
    other = sorted(Path("cache/tokens").rglob("*.msgpack"))[9]
    other.write_bytes(b"\x93\x01\x02\x03")                        # valid msgpack, foreign
    (workdir / "dataset" / "manifest.json").unlink()              # make the merge re-run
    for merged in ("merge", "rows", "parts"):       # and read every token shard again
        shutil.rmtree(workdir / "cache" / merged)
    assert run_doit(f"repo={sample_repo}")[0] == 0
    assert tensors(workdir) == before
    reported = capfd.readouterr().err
    for path in (chunk, token, other):
        assert f"cache: {path} is damaged or foreign; it will be rebuilt" in reported


def children(pid: int) -> list:
    """The processes whose parent is pid (the worker pool of a doit), from /proc."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(stat[1]) == pid:
                found.append(int(entry.name))
    return found


def _wait_for(predicate, process, limit=120.0):
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline and process.poll() is None:
        if predicate():
            return True
        time.sleep(0.002)
    return False


KILL_POINTS = {
    "writing chunk shards": lambda w: len(list((w / "cache" / "chunks").rglob("*"))) > 8,
    "writing token shards": lambda w: len(list((w / "cache" / "tokens").rglob("*"))) > 8,
    # The merge makes dataset/ first, then imports torch and writes the tensors: killing as
    # soon as it exists lands inside the merge (waiting for a .pt raced its end once the
    # merge got fast).
    "merging": lambda w: (w / "dataset").exists(),
}


@pytest.mark.parametrize("moment", list(KILL_POINTS))
def test_a_build_killed_at_any_moment_is_completed_by_the_next_run(workdir, sample_repo, moment):
    extend_sample_repository(sample_repo, 40)
    reference = workdir / "reference"
    reference.mkdir()
    assert doit(reference, f"repo={sample_repo}").returncode == 0
    pinned = json.loads((reference / "dataset" / "manifest.json").read_text())[
        "tokenizer"]["trained_on_commit"]

    target = workdir / "killed"
    target.mkdir()
    args = [f"repo={sample_repo}", f"tokenizer_commit={pinned}"]
    env = {**os.environ, "PIPELINE_CONFIG_DIR": str(target)}
    process = subprocess.Popen(doit_command(target, *args), env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    reached = _wait_for(lambda: KILL_POINTS[moment](target), process)
    workers = children(process.pid)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert reached, f"the build finished before {moment}"
    deadline = time.monotonic() + 10
    while any(Path(f"/proc/{pid}").exists() for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(Path(f"/proc/{pid}").exists() for pid in workers), "workers outlived doit"
    assert not (target / "dataset" / "manifest.json").exists()   # nothing looks complete
    result = doit(target, *args)
    assert result.returncode == 0, result.stdout + result.stderr
    assert tensors(target) == tensors(reference)


def test_a_second_build_on_the_same_cache_is_refused_with_a_message(workdir, sample_repo):
    (workdir / "cache").mkdir()
    with open(workdir / "cache" / ".lock", "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        handle.write("pid 12345")
        handle.flush()
        result = doit(workdir, f"repo={sample_repo}")
    assert result.returncode != 0
    assert "another doit is building with cache" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr
    assert doit(workdir, f"repo={sample_repo}").returncode == 0    # once the lock is free


def test_a_damaged_doit_state_file_is_moved_aside_and_the_build_gives_the_same_tensors(
        workdir, sample_repo):
    assert doit(workdir, f"repo={sample_repo}").returncode == 0
    before = tensors(workdir)
    (workdir / ".doit.db").write_bytes(b"this is not a database" * 100)
    (workdir / "dataset" / "manifest.json").unlink()
    result = doit(workdir, f"repo={sample_repo}")
    assert result.returncode == 0, result.stderr
    assert "was damaged" in result.stderr and "Traceback" not in result.stderr
    assert (workdir / ".doit.db.damaged").is_file()
    assert tensors(workdir) == before


@pytest.mark.parametrize("module, constant, rebuilt", [
    (syntax, "ANALYSER_VERSION", {"chunks", "tokens", "merge"}),
    (chunk_shard, "CHUNKER_VERSION", {"chunks", "tokens", "merge"}),
    (segments, "FORMAT_VERSION", {"tokens", "merge"}),
    (outputs, "DATASET_VERSION", {"merge"}),
])
def test_a_code_version_change_rebuilds_exactly_its_stage_and_later_ones(
        workdir, sample_repo, monkeypatch, module, constant, rebuilt):
    assert run_doit(f"repo={sample_repo}")[0] == 0
    monkeypatch.setattr(module, constant, getattr(module, constant) + 100)
    code, record = run_doit(f"repo={sample_repo}")
    assert code == 0
    ran = {name.split(":")[0] for name in record.executed if ":" in name or name == "merge"}
    assert ran == rebuilt


def test_changing_a_chunk_setting_rebuilds_chunks_and_tokens(workdir, sample_repo):
    assert run_doit(f"repo={sample_repo}")[0] == 0
    code, record = run_doit(f"repo={sample_repo}", "context_per_kind=1")
    assert code == 0 and len(built(record, "chunks")) == len(built(record, "tokens")) == 31
    code, record = run_doit(f"repo={sample_repo}", "context_per_kind=1", "val_ratio=0.2")
    assert code == 0 and built(record, "tokens") == [] and "merge" in record.executed


def test_an_unwritable_cache_gets_a_clear_error_and_no_outputs(workdir, sample_repo):
    (workdir / "a-file").write_text("x")
    result = doit(workdir, f"repo={sample_repo}", f"cache_dir={workdir / 'a-file' / 'cache'}")
    assert result.returncode != 0
    assert "could not write or read" in result.stdout and "Traceback" not in result.stdout
    assert not (workdir / "dataset" / "manifest.json").exists()
