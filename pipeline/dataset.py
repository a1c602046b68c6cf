"""Token shards of the commit list in, dataset/{train,val,test}.pt, stats.json, manifest.json out.

Rows follow the commit list's temporal order; a commit's rows all go to one split, and the
splits are consecutive runs of commits, so every train commit is older than every val
commit, which is older than every test commit. The manifest is removed first and written
last: a merge cut short never leaves outputs that look complete.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
import statistics
from collections import Counter
from pathlib import Path

from pipeline import __version__, cache
from pipeline.config import Settings
from pipeline.examples import FIELDS

SPLITS = ("train", "val", "test")
IGNORE_INDEX = -100
# Bump when the output files change: part of the merge key.
DATASET_VERSION = 2


def merge_key(settings: Settings, token_keys: list, tokenizer_hash: str) -> str:
    return cache.content_key([token_keys, tokenizer_hash,
                              settings.section_hash(settings.split_section()), DATASET_VERSION])


def split_bounds(commit_count: int, settings: Settings) -> tuple[int, int]:
    """Indices where val and test begin in the temporally ordered commit list."""
    test = round(commit_count * settings.test_ratio)
    val = round(commit_count * settings.val_ratio)
    train = max(commit_count - val - test, 1 if commit_count else 0)
    return train, min(train + val, commit_count)


def _labels(example: dict) -> list:
    labels = [IGNORE_INDEX] * len(example["input_ids"])
    for start, end in example["loss_spans"]:
        labels[start:end] = example["input_ids"][start:end]
    return labels


def _commit_tensors(rows: list, max_length: int, pad_id: int) -> dict:
    """Commit mode: one padded row per example."""
    import torch  # here, not at the top: importing torch costs a no-op `doit` a second

    count = len(rows)
    input_ids = torch.full((count, max_length), pad_id, dtype=torch.int32)
    labels = torch.full((count, max_length), IGNORE_INDEX, dtype=torch.int32)
    attention = torch.zeros((count, max_length), dtype=torch.int8)
    for row, (example, _) in enumerate(rows):
        length = len(example["input_ids"])
        input_ids[row, :length] = torch.tensor(example["input_ids"], dtype=torch.int32)
        labels[row, :length] = torch.tensor(_labels(example), dtype=torch.int32)
        attention[row, :length] = 1
    return {"input_ids": input_ids, "attention_mask": attention, "labels": labels,
            "commit_time": torch.tensor([shard["committer_time"] for _, shard in rows],
                                        dtype=torch.int64),
            "commit_sha": [shard["sha"] for _, shard in rows],
            "path": [example["paths"] for example, _ in rows],
            "item": [example["items"] for example, _ in rows]}


def _sequential_tensors(rows: list, max_length: int, pad_id: int) -> dict:
    """Sequential mode: examples back to back in full windows; segment_ids number the
    original examples within a window (-1 on the padding of the last window) so a trainer
    can keep attention inside each one."""
    import torch

    stream, label_stream, segment_stream, starts = [], [], [], []
    for number, (example, shard) in enumerate(rows):
        starts.append((len(stream), shard))
        stream += example["input_ids"]
        label_stream += _labels(example)
        segment_stream += [number] * len(example["input_ids"])
    windows = max(-(-len(stream) // max_length), 0)
    size = windows * max_length
    pad = size - len(stream)
    input_ids = torch.tensor(stream + [pad_id] * pad, dtype=torch.int32).view(windows, max_length)
    labels = torch.tensor(label_stream + [IGNORE_INDEX] * pad,
                          dtype=torch.int32).view(windows, max_length)
    segments = torch.tensor(segment_stream + [-1] * pad, dtype=torch.int32).view(
        windows, max_length)
    # Renumber segments from 0 in each window, keeping -1 for padding.
    first = segments[:, :1].clamp(min=0)
    segments = torch.where(segments >= 0, segments - first, segments)
    window_commits = [[] for _ in range(windows)]
    for offset, shard in starts:
        window_commits[offset // max_length].append(shard["sha"])
    return {"input_ids": input_ids, "attention_mask": (segments >= 0).to(torch.int8),
            "labels": labels, "segment_ids": segments,
            "commit_time": torch.tensor([rows[segment_stream[w * max_length]][1]["committer_time"]
                                         for w in range(windows)], dtype=torch.int64),
            "commit_sha": window_commits}


def _distribution(values: list) -> dict:
    if not values:
        return {"mean": 0, "median": 0, "p95": 0, "max": 0}
    ordered = sorted(values)
    return {"mean": round(statistics.fmean(ordered), 2), "median": statistics.median(ordered),
            "p95": ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))], "max": ordered[-1]}


def _stats(shards_by_split: dict, examples_by_split: dict) -> dict:
    all_examples = [example for rows in examples_by_split.values() for example, _ in rows]
    all_shards = [shard for shards in shards_by_split.values() for shard in shards]
    segments = [fields for example in all_examples for fields in example["field_tokens"]]
    sums = lambda key: dict(sorted(sum((Counter(s[key]) for s in all_shards), Counter()).items()))  # noqa: E731
    return {
        "splits": {split: {
            "commits": len(shards_by_split[split]), "rows": len(examples_by_split[split]),
            "tokens": sum(len(e["input_ids"]) for e, _ in examples_by_split[split]),
            "chunks": sum(s["chunk_count"] for s in shards_by_split[split]),
            "loss_tokens": sum(end - start for e, _ in examples_by_split[split]
                               for start, end in e["loss_spans"])} for split in SPLITS},
        "tokens_per_field": {field: _distribution([fields[field] for fields in segments])
                             for field in FIELDS},
        "tokens_per_example": _distribution([len(e["input_ids"]) for e in all_examples]),
        "truncations": sums("truncations"),
        "chunks_truncated_by_size": sum(s["chunk_truncations"] for s in all_shards),
        "skipped": sums("skipped"),
        "files_flagged": sums("flagged"),
        "chunks_by_kind": dict(sorted(Counter(k for e in all_examples for k in e["kinds"]).items())),
        "chunks_by_change": dict(sorted(Counter(c for e in all_examples
                                                for c in e["changes"]).items())),
        "context_snippets": dict(sorted(sum((Counter(e["context_kinds"]) for e in all_examples),
                                            Counter()).items())),
        "chunks_with_cross_file_definition": round(
            sum(e["chunks_with_definition"] for e in all_examples) / max(len(segments), 1), 4),
        "context_resolution": sums("context_counts"),
    }


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _write_json(path: Path, value) -> None:
    cache.write_atomic(path, (json.dumps(value, indent=2, sort_keys=True) + "\n").encode())


def _save_tensors(path: Path, tensors: dict) -> None:
    import torch

    temporary = path.with_name(f".{path.name}.tmp")
    torch.save(tensors, temporary)
    temporary.replace(path)


def _commit_range(shards: list) -> dict | None:
    if not shards:
        return None
    return {"first_commit": shards[0]["sha"], "last_commit": shards[-1]["sha"],
            "first_time": shards[0]["committer_time"], "last_time": shards[-1]["committer_time"]}


def merge(settings: Settings, listing: dict, token_paths: list, tokenizer_info: dict,
          special: dict, key: str) -> dict:
    """Write the split tensors, stats and manifest; returns the stats."""
    out = settings.dataset
    out.mkdir(parents=True, exist_ok=True)
    (out / "manifest.json").unlink(missing_ok=True)
    shards = [cache.read_record(path) for path in token_paths]
    if any(shard is None for shard in shards):
        missing = [str(p) for p, s in zip(token_paths, shards) if s is None]
        raise RuntimeError(f"token shards missing or damaged, run `doit` again: {missing[:3]}")
    val_start, test_start = split_bounds(len(shards), settings)
    shards_by_split = dict(zip(SPLITS, (shards[:val_start], shards[val_start:test_start],
                                        shards[test_start:])))
    examples_by_split = {split: [(example, shard) for shard in shards_by_split[split]
                                 for example in shard["examples"]] for split in SPLITS}
    files = {}
    to_tensors = _sequential_tensors if settings.example_mode == "sequential" else _commit_tensors
    for split in SPLITS:
        path = out / f"{split}.pt"
        _save_tensors(path, to_tensors(examples_by_split[split], settings.max_length,
                                       special["<pad>"]))
        files[path.name] = path
    shutil.copyfile(tokenizer_info["path"], out / "tokenizer.json")
    files["tokenizer.json"] = out / "tokenizer.json"
    stats = _stats(shards_by_split, examples_by_split)
    _write_json(out / "stats.json", stats)
    files["stats.json"] = out / "stats.json"
    manifest = {
        "pipeline_version": __version__, "merge_key": key,
        "settings": dataclasses.asdict(settings),
        "repository": listing["repo"], "ref": listing["ref"], "head": listing["head"],
        "tokenizer": {"hash": tokenizer_info["hash"], "source": tokenizer_info["source"],
                      "trained_on_commit": tokenizer_info["trained_on_commit"],
                      "special_tokens": special, "added_tokens": {
                          token: special[token] for token in tokenizer_info["added_tokens"]}},
        "splits": {split: _commit_range(shards_by_split[split]) for split in SPLITS},
        "files": {name: {"sha256": _sha256(path), "bytes": path.stat().st_size}
                  for name, path in sorted(files.items())},
    }
    _write_json(out / "manifest.json", manifest)
    return stats


def is_current(settings: Settings, key: str) -> bool:
    """Whether the outputs on disk were written, completely, by a merge with this key."""
    try:
        manifest = json.loads((settings.dataset / "manifest.json").read_text())
    except (OSError, ValueError):
        return False
    return manifest.get("merge_key") == key and all(
        (settings.dataset / name).is_file() for name in manifest.get("files", {}))
