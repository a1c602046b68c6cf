"""The doit task graph end to end: a real sample history, real tree-sitter, a trained tokenizer."""

from __future__ import annotations

import json
import shutil


from conftest import run_doit, split_outputs
from pipeline.config import Settings
from pipeline.git.sample_repo import commit_count, extend_sample_repository, git
from pipeline.loading import load_tensors
from pipeline.rust.files import path_skip_reason
from pipeline.rust.symbols import definitions_path

OUTPUTS = ("train-00000.pt", "val-00000.pt", "test-00000.pt", "stats.json", "manifest.json",
           "tokenizer.json")


def snapshot(directory):
    return {name: ((directory / name).stat().st_mtime_ns, (directory / name).read_bytes())
            for name in OUTPUTS}


def built(record, stage):
    """The commits whose shards of stage this run built."""
    return record.built_shas.get(stage, [])


def test_default_run_builds_the_generated_sample_and_says_how_to_use_a_real_repo(workdir):
    code, record = run_doit("--output-file", str(workdir / "out.txt"))
    assert code == 0
    commits = commit_count(workdir / "cache" / "sample_repo")
    assert commits >= 24
    assert len(built(record, "chunks")) == commits == len(built(record, "tokens"))
    assert "merge" in record.executed
    out = (workdir / "out.txt").read_text()
    assert "doit repo=PATH" in out and "examples: train" in out
    train = load_tensors(workdir / "dataset", "train")
    assert {"input_ids", "attention_mask", "labels"} <= set(train)
    assert train["input_ids"].shape == train["labels"].shape == train["attention_mask"].shape
    assert train["input_ids"].shape[0] > 0
    stats = json.loads((workdir / "dataset" / "stats.json").read_text())
    assert sum(split["commits"] for split in stats["splits"].values()) == commits


def test_second_run_with_nothing_new_builds_nothing_and_leaves_outputs_untouched(
        workdir, sample_repo):
    assert run_doit(f"repo={sample_repo}")[0] == 0
    before = snapshot(workdir / "dataset")
    code, record = run_doit(f"repo={sample_repo}")
    assert code == 0
    assert built(record, "chunks") == [] and built(record, "tokens") == []
    assert "merge" not in record.executed
    assert snapshot(workdir / "dataset") == before


def test_new_commits_build_exactly_their_shards_then_merge(workdir, sample_repo):
    assert run_doit(f"repo={sample_repo}")[0] == 0
    extend_sample_repository(sample_repo, 3)
    code, record = run_doit(f"repo={sample_repo}")
    assert code == 0
    assert len(built(record, "chunks")) == 3 and len(built(record, "tokens")) == 3
    assert "merge" in record.executed
    manifest = json.loads((workdir / "dataset" / "manifest.json").read_text())
    assert manifest["repositories"][0]["head"] == git(sample_repo, "rev-parse", "HEAD").strip()


def indexed_blobs(repo, *revisions) -> set:
    """The blobs of the Rust files the symbol index reads in revisions' trees and history."""
    listed = git(repo, "rev-list", "--objects", *revisions).split("\n")
    exclude = Settings().exclude_globs()
    return {line.split()[0] for line in listed if line.endswith(".rs")
            and path_skip_reason(line.split(maxsplit=1)[1], exclude) is None}


def test_definitions_are_stored_for_the_file_versions_a_block_ends_with(workdir, sample_repo):
    """The chunks stage stores the definitions of the file versions in the tree its block of
    commits ends with, where another worker's block or a later run starts, and not those
    of versions replaced within the block. (The sample's commits are few: they are built
    in the doit process, one block per run.)"""
    def stored(blob):
        return definitions_path(workdir / "cache", blob, Settings().max_file_bytes).exists()

    assert run_doit(f"repo={sample_repo}")[0] == 0
    head = indexed_blobs(sample_repo, "--no-walk", "HEAD")
    replaced = indexed_blobs(sample_repo, "HEAD") - head
    assert head and replaced
    assert all(stored(blob) for blob in head) and not any(stored(blob) for blob in replaced)

    extend_sample_repository(sample_repo, 1)
    assert run_doit(f"repo={sample_repo}")[0] == 0
    assert all(stored(blob) for blob in indexed_blobs(sample_repo, "--no-walk", "HEAD"))


def test_changing_a_token_setting_rebuilds_token_shards_but_no_chunk_shards(workdir, sample_repo):
    assert run_doit(f"repo={sample_repo}")[0] == 0
    code, record = run_doit(f"repo={sample_repo}", "budget_new=1024")
    assert code == 0
    assert built(record, "chunks") == []
    assert len(built(record, "tokens")) == commit_count(sample_repo)
    assert "merge" in record.executed


def test_clean_removes_cache_and_outputs_and_the_next_run_rebuilds_everything(workdir, sample_repo):
    assert run_doit(f"repo={sample_repo}")[0] == 0
    assert run_doit(f"repo={sample_repo}", "clean")[0] == 0
    assert not (workdir / "cache").exists() and not (workdir / "dataset").exists()
    code, record = run_doit(f"repo={sample_repo}")
    assert code == 0
    assert len(built(record, "chunks")) == commit_count(sample_repo)
    assert (workdir / "dataset" / "train-00000.pt").is_file()


def test_incremental_runs_give_the_same_bytes_as_a_build_from_scratch(workdir, sample_repo):
    assert run_doit(f"repo={sample_repo}")[0] == 0
    extend_sample_repository(sample_repo, 2)
    assert run_doit(f"repo={sample_repo}")[0] == 0
    extend_sample_repository(sample_repo, 3)
    assert run_doit(f"repo={sample_repo}")[0] == 0
    manifest = json.loads((workdir / "dataset" / "manifest.json").read_text())
    pinned = manifest["tokenizer"]["trained_on_commit"]
    incremental = split_outputs(workdir / "dataset")

    shutil.rmtree(workdir / "cache")
    shutil.rmtree(workdir / "dataset")
    code, record = run_doit(f"repo={sample_repo}", f"tokenizer_commit={pinned}")
    assert code == 0
    assert len(built(record, "chunks")) == commit_count(sample_repo)
    for name, data in incremental.items():
        assert (workdir / "dataset" / name).read_bytes() == data, name


def test_worker_processes_give_the_same_bytes_as_one_process(workdir, sample_repo):
    extend_sample_repository(sample_repo, 40)                # enough commits for a pool
    code, record = run_doit(f"repo={sample_repo}", "jobs=2")
    assert code == 0 and record.processes == {"chunks": 2, "tokens": 2, "merge": 2}
    assert len(built(record, "chunks")) == commit_count(sample_repo)
    pinned = json.loads((workdir / "dataset" / "manifest.json").read_text())[
        "tokenizer"]["trained_on_commit"]
    in_workers = split_outputs(workdir / "dataset")

    shutil.rmtree(workdir / "cache")
    shutil.rmtree(workdir / "dataset")
    code, record = run_doit(f"repo={sample_repo}", "jobs=1", f"tokenizer_commit={pinned}")
    assert code == 0 and record.processes == {"chunks": 1, "tokens": 1}
    for name, data in in_workers.items():
        assert (workdir / "dataset" / name).read_bytes() == data, name
