"""The merged splits: temporal order without overlap, masks that line up, loading."""

from __future__ import annotations

import json

import pytest
import torch
from tokenizers import Tokenizer

from conftest import run_doit
from pipeline.config import Settings
from pipeline.loading import load_tensors
from pipeline.merge.tensors import IGNORE_INDEX
from pipeline.periods import split_bounds

DAY = 86_400
JAN_1_2024 = 1_704_067_200


@pytest.mark.parametrize("count, bounds", [(10, (8, 9)), (31, (25, 28)), (1, (1, 1)), (0, (0, 0))])
def test_split_bounds_by_commit_ratio(count, bounds):
    assert split_bounds([JAN_1_2024 + i * DAY for i in range(count)], Settings()) == bounds


@pytest.mark.parametrize("val_from, test_from, bounds", [
    ("2024-01-05", "2024-01-08", (4, 7)), ("", "2024-01-08", (7, 7)),
    ("2024-01-05", "", (4, 10)), ("2023-01-01", "2025-01-01", (0, 10)),
    ("2024-01-05T12:00:00+00:00", "2024-01-08", (5, 7))])
def test_split_bounds_by_date(val_from, test_from, bounds):
    times = [JAN_1_2024 + i * DAY for i in range(10)]
    settings = Settings(val_from=val_from, test_from=test_from)
    assert split_bounds(times, settings) == bounds


@pytest.fixture
def built_sample(workdir, sample_repo):
    assert run_doit(f"repo={sample_repo}")[0] == 0
    return workdir / "dataset"


def load(dataset, split):
    return load_tensors(dataset, split)


def test_splits_are_temporal_and_every_commit_is_in_one_split(built_sample):
    splits = {name: load(built_sample, name) for name in ("train", "val", "test")}
    times = {name: split["commit_time"].tolist() for name, split in splits.items()}
    for values in times.values():
        assert values == sorted(values)
    assert max(times["train"]) <= min(times["val"]) <= max(times["val"]) <= min(times["test"])
    shas = {name: set(split["commit_sha"]) for name, split in splits.items()}
    assert not (shas["train"] & shas["val"] or shas["val"] & shas["test"]
                or shas["train"] & shas["test"])
    manifest = json.loads((built_sample / "manifest.json").read_text())
    assert manifest["splits"]["train"]["last_date"] <= manifest["splits"]["val"]["first_date"]


def loss_regions(labels_row):
    """(start, end) of each run of positions that carry a label."""
    marked = (labels_row != IGNORE_INDEX).tolist() + [False]
    regions, start = [], None
    for position, on in enumerate(marked):
        if on and start is None:
            start = position
        elif not on and start is not None:
            regions.append((start, position))
            start = None
    return regions


def test_masks_and_labels_line_up_with_the_tokens(built_sample):
    split = load(built_sample, "train")
    tokenizer = Tokenizer.from_file(str(built_sample / "tokenizer.json"))
    token = tokenizer.token_to_id
    ids, mask, labels = split["input_ids"], split["attention_mask"], split["labels"]
    assert ids.dtype == labels.dtype == torch.int32
    assert torch.equal(ids[mask == 0], torch.full_like(ids[mask == 0], token("<pad>")))
    assert torch.equal(labels[labels != IGNORE_INDEX], ids[labels != IGNORE_INDEX])
    for row in range(ids.shape[0]):
        length = int(mask[row].sum())
        row_ids = ids[row].tolist()
        assert mask[row, :length].all() and not mask[row, length:].any()
        assert row_ids[0] == token("<reponame>") and row_ids[length - 1] == token("<|endoftext|>")
        regions = loss_regions(labels[row])
        # One region per chunk of the row: each starts right after a <commit_after> and
        # ends with the token that stops it, which carries loss too: the next chunk's
        # <filename>, the last one's <|endoftext|>.
        assert len(regions) == row_ids[:length].count(token("<commit_after>")) == len(
            split["path"][row])
        for start, end in regions:
            assert row_ids[start - 1] == token("<commit_after>")
            assert row_ids[end - 1] in (token("<filename>"), token("<|endoftext|>"))
        assert regions[-1][1] == length
    assert len(split["path"]) == len(split["item"]) == len(split["commit_sha"]) == ids.shape[0]


def test_rows_pack_several_chunks_of_one_commit_but_never_two_commits(built_sample):
    split = load(built_sample, "train")
    stats = json.loads((built_sample / "stats.json").read_text())
    assert stats["splits"]["train"]["chunks"] > split["input_ids"].shape[0]
    assert max(len(paths) for paths in split["path"]) > 1
    per_commit = {}
    for sha in split["commit_sha"]:
        per_commit[sha] = per_commit.get(sha, 0) + 1
    assert max(per_commit.values()) == 1          # the sample's commits each fit one row


def test_manifest_and_stats_describe_the_files(built_sample):
    import hashlib
    manifest = json.loads((built_sample / "manifest.json").read_text())
    for name, entry in manifest["files"].items():
        assert hashlib.sha256((built_sample / name).read_bytes()).hexdigest() == entry["sha256"]
    assert manifest["settings"]["val_ratio"] == 0.1
    stats = json.loads((built_sample / "stats.json").read_text())
    assert stats["splits"]["train"]["rows"] == load(built_sample, "train")["input_ids"].shape[0]
    assert stats["files_flagged"]["syntax_error_fallback"] >= 1


def test_a_cherry_picked_change_in_the_test_period_is_dropped_and_counted(workdir, rust_repo):
    v1 = "pub fn rate() -> u32 {\n    1\n}\n"
    v2 = "pub fn rate() -> u32 {\n    2 * scale()\n}\n"
    rust_repo.commit("add rate", {"src/rate.rs": v1})
    change = rust_repo.commit("double the rate", {"src/rate.rs": v2})
    rust_repo.commit("revert: double the rate", {"src/rate.rs": v1})
    for index in range(6):
        rust_repo.commit(f"filler {index}", {f"src/filler{index}.rs": f"pub fn f{index}() {{}}\n"})
    rust_repo.commit("val filler", {"src/val.rs": "pub fn v() {}\n"})
    rust_repo.git("cherry-pick", change)
    assert run_doit(f"repo={rust_repo.path}")[0] == 0
    stats = json.loads((workdir / "dataset" / "stats.json").read_text())
    assert stats["skipped"]["leakage_test"] == 1
    assert stats["splits"]["test"]["commits"] == 1 and stats["splits"]["test"]["chunks"] == 0
    test = load(workdir / "dataset", "test")
    assert test["input_ids"].shape[0] == 0

    assert run_doit(f"repo={rust_repo.path}", "leakage_guard=off")[0] == 0
    stats = json.loads((workdir / "dataset" / "stats.json").read_text())
    assert "leakage_test" not in stats["skipped"] and stats["splits"]["test"]["chunks"] == 1


def test_splits_by_date(workdir, sample_repo):
    assert run_doit(f"repo={sample_repo}", "val_from=2024-01-20", "test_from=2024-01-26")[0] == 0
    manifest = json.loads((workdir / "dataset" / "manifest.json").read_text())
    splits = manifest["splits"]
    assert splits["train"]["last_date"] < "2024-01-20" <= splits["val"]["first_date"]
    assert splits["val"]["last_date"] < "2024-01-26" <= splits["test"]["first_date"]
    assert sum(split["commits"] for split in splits.values()) == 31
