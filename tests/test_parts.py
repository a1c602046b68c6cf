"""Splits written in parts: the parts joined are the split, and a pull rewrites only the
parts its commits change."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
from array import array

import pytest
import torch

from conftest import run_doit, split_outputs
from pipeline import store
from pipeline.config import Settings
from pipeline.git.sample_repo import commit_count, extend_sample_repository
from pipeline.loading import jsonl_lines, load_split, load_tensors
from pipeline.run.part_writer import PartWriter
from pipeline.tokens.text_ids import ID_TYPE


def manifest(workdir) -> dict:
    return json.loads((workdir / "dataset" / "manifest.json").read_text())


def test_parts_joined_are_the_split_written_as_one_part(workdir, sample_repo):
    assert run_doit(f"repo={sample_repo}", "commits_per_part=1000")[0] == 0
    whole = {split: (load_tensors(workdir / "dataset", split),
                     list(jsonl_lines(workdir / "dataset", split)))
             for split in ("train", "val", "test")}
    assert all(len(manifest(workdir)["splits"][s]["parts"]) == 1 for s in whole)

    assert run_doit(f"repo={sample_repo}", "commits_per_part=4")[0] == 0
    parts = manifest(workdir)["splits"]
    assert len(parts["train"]["parts"]) == -(-parts["train"]["commits"] // 4)
    listed = {name for split in parts.values() for name in split["parts"]}
    assert {path.stem for path in (workdir / "dataset").glob("*.pt")} == listed  # none stale
    for split, (tensors, lines) in whole.items():
        joined = load_tensors(workdir / "dataset", split)
        assert set(joined) == set(tensors)
        for key, value in tensors.items():
            if isinstance(value, torch.Tensor):
                assert torch.equal(joined[key], value), (split, key)
            else:
                assert joined[key] == value, (split, key)
        assert list(jsonl_lines(workdir / "dataset", split)) == lines
    train = load_split(workdir / "dataset", "train")
    assert len(train) == whole["train"][0]["input_ids"].shape[0]
    assert torch.equal(train[len(train) - 1]["input_ids"],
                       whole["train"][0]["input_ids"][-1].long())


def test_a_pull_rewrites_only_the_parts_it_changes_and_equals_a_clean_build(
        workdir, sample_repo):
    args = [f"repo={sample_repo}", "commits_per_part=4"]
    assert run_doit(*args)[0] == 0
    first = manifest(workdir)["splits"]["train"]["parts"][0]
    written = (workdir / "dataset" / f"{first}.pt").stat().st_mtime_ns
    extend_sample_repository(sample_repo, 3)
    assert run_doit(*args)[0] == 0
    # The first train part's commits and their rows did not change: its file was kept.
    assert (workdir / "dataset" / f"{first}.pt").stat().st_mtime_ns == written
    incremental = split_outputs(workdir / "dataset")
    pinned = manifest(workdir)["tokenizer"]["trained_on_commit"]

    shutil.rmtree(workdir / "cache")
    shutil.rmtree(workdir / "dataset")
    assert run_doit(*args, f"tokenizer_commit={pinned}")[0] == 0
    assert split_outputs(workdir / "dataset") == incremental


def test_the_part_writer_writes_in_its_own_process_and_brings_its_errors_back(tmp_path):
    """The .pt a PartWriter writes loads with torch and has the rows; a write that fails
    raises the OSError (with the path) in the caller; told the merge is done, the process
    ends by itself."""
    settings = Settings(max_length=8)
    row = {"ids": array(ID_TYPE, [5, 6, 7]).tobytes(), "spans": [[1, 3]],
           "paths": ["src/lib.rs"], "items": ["f"]}
    rows = [(row, "a" * 40, 1_700_000_000, "garden/planner")]
    writer = PartWriter()
    entry = writer.write_tensors(settings, tmp_path, "train-00000", rows, 0)()
    written = (tmp_path / "train-00000.pt").read_bytes()
    assert entry == {"sha256": hashlib.sha256(written).hexdigest(), "bytes": len(written)}
    tensors = torch.load(tmp_path / "train-00000.pt", weights_only=True)
    assert tensors["input_ids"][0].tolist() == [5, 6, 7, 0, 0, 0, 0, 0]
    assert tensors["labels"][0].tolist()[:3] == [-100, 6, 7]
    assert tensors["repository"] == ["garden/planner"]

    with pytest.raises(OSError) as failed:
        writer.write_tensors(settings, tmp_path / "absent", "val-00000", rows, 0)()
    assert failed.value.filename.startswith(str(tmp_path / "absent"))
    process = writer._process
    writer.close()
    process.join(timeout=30)
    assert process.exitcode == 0 and not list(tmp_path.glob(".*.tmp"))


def test_the_part_writer_ignores_a_ctrl_c_that_comes_while_it_starts(tmp_path):
    """A Ctrl-C to the whole process group also reaches a child process that is still
    importing its modules, before it ignores SIGINT itself: started under
    interrupts.held(), it goes on (no traceback, no lost process) and writes its parts."""
    writer = PartWriter()
    process = writer._process
    os.kill(process.pid, signal.SIGINT)                 # it is starting Python right now
    row = {"ids": array(ID_TYPE, [5, 6]).tobytes(), "spans": [[1, 2]], "paths": ["a.rs"],
           "items": ["f"]}
    entry = writer.write_tensors(Settings(max_length=4), tmp_path, "train-00000",
                                 [(row, "a" * 40, 1_700_000_000, "garden/planner")], 0)()
    assert entry["bytes"] == (tmp_path / "train-00000.pt").stat().st_size > 0
    writer.close()
    process.join(timeout=30)
    assert process.exitcode == 0


def test_the_pools_workers_write_a_first_merges_parts_as_the_merge_itself_would(workdir,
                                                                                sample_repo):
    """A first merge of many commits has the pool's workers write its parts, packing their
    rows; a merge alone (jobs=1) packs the same rows records and part records, byte for
    byte, and writes the same outputs. The tokens stage's workers also left the token
    shards' summaries, which the merge took in."""
    extend_sample_repository(sample_repo, 40)          # enough commits for a pool
    args = [f"repo={sample_repo}", "jobs=2"]
    code, record = run_doit(*args, "tokens")
    assert code == 0 and record.processes == {"chunks": 2, "tokens": 2}
    new_summaries = workdir / "cache" / "merge" / "new-summaries"
    left = [store.read_record(path) for path in new_summaries.iterdir()]
    assert sum(len(each["by_key"]) for each in left) == commit_count(sample_repo)
    # Left by a run of another summary version (before an upgrade): not taken in.
    store.write_record(new_summaries / "older.msgpack",
                       {"version": -1, "by_key": {key: ["old"] for key in left[0]["by_key"]}})
    code, record = run_doit(*args)               # the tokens stage's pool is gone: a new one
    assert code == 0 and record.processes["merge"] == 2 and record.pools_started == ["rows"]
    assert not list(new_summaries.iterdir())         # taken into the summaries' index
    records = {kind: workdir / "cache" / kind for kind in ("rows", "parts")}
    by_workers = {kind: {path.name: path.read_bytes() for path in folder.rglob("*.msgpack")}
                  for kind, folder in records.items()}
    assert len(by_workers["rows"]) > 20 and len(by_workers["parts"]) > 2
    outputs = split_outputs(workdir / "dataset")

    for merged in ("rows", "parts", "merge"):
        shutil.rmtree(workdir / "cache" / merged)
    (workdir / "dataset" / "manifest.json").unlink()
    code, record = run_doit(f"repo={sample_repo}", "jobs=1")
    assert code == 0 and record.processes.get("merge", 1) == 1
    for kind, folder in records.items():
        assert {path.name: path.read_bytes() for path in folder.rglob("*.msgpack")} == \
            by_workers[kind], kind
    assert split_outputs(workdir / "dataset") == outputs

    # Every part again, from cached rows (commits_per_part changed): many parts, so the
    # workers write them, as a merge alone writes them.
    code, record = run_doit(*args, "commits_per_part=2")
    assert code == 0 and record.processes["merge"] == 2
    assert sum(len(split["parts"]) for split in manifest(workdir)["splits"].values()) >= 32
    outputs = split_outputs(workdir / "dataset")
    shutil.rmtree(workdir / "cache" / "parts")
    (workdir / "dataset" / "manifest.json").unlink()
    code, record = run_doit(f"repo={sample_repo}", "jobs=1", "commits_per_part=2")
    assert code == 0 and record.processes.get("merge", 1) == 1
    assert split_outputs(workdir / "dataset") == outputs
