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

SPLITS = ("train", "val", "test")
IGNORE_INDEX = -100
# Bump when the output files change: part of the merge key.
DATASET_VERSION = 1


def merge_key(settings: Settings, token_keys: list, tokenizer_hash: str) -> str:
    return cache.content_key([token_keys, tokenizer_hash,
                              settings.section_hash(settings.split_section()), DATASET_VERSION])


def split_bounds(commit_count: int, settings: Settings) -> tuple[int, int]:
    """Indices where val and test begin in the temporally ordered commit list."""
    test = round(commit_count * settings.test_ratio)
    val = round(commit_count * settings.val_ratio)
    train = max(commit_count - val - test, 1 if commit_count else 0)
    return train, min(train + val, commit_count)


def _tensors(examples: list, max_length: int, pad_id: int) -> dict:
    import torch  # here, not at the top: importing torch costs a no-op `doit` a second

    rows = len(examples)
    input_ids = torch.full((rows, max_length), pad_id, dtype=torch.int32)
    labels = torch.full((rows, max_length), IGNORE_INDEX, dtype=torch.int32)
    attention = torch.zeros((rows, max_length), dtype=torch.int8)
    for row, (example, _) in enumerate(examples):
        ids = torch.tensor(example["input_ids"], dtype=torch.int32)
        input_ids[row, :len(ids)] = ids
        attention[row, :len(ids)] = 1
        labels[row, example["loss_start"]:len(ids)] = ids[example["loss_start"]:]
    return {"input_ids": input_ids, "attention_mask": attention, "labels": labels,
            "commit_time": torch.tensor([shard["committer_time"] for _, shard in examples],
                                        dtype=torch.int64),
            "commit_sha": [shard["sha"] for _, shard in examples],
            "path": [example["path"] for example, _ in examples],
            "item": [example["item"] for example, _ in examples]}


def _distribution(values: list) -> dict:
    if not values:
        return {"mean": 0, "median": 0, "p95": 0, "max": 0}
    ordered = sorted(values)
    return {"mean": round(statistics.fmean(ordered), 2), "median": statistics.median(ordered),
            "p95": ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))], "max": ordered[-1]}


def _stats(shards_by_split: dict, examples_by_split: dict) -> dict:
    all_examples = [example for rows in examples_by_split.values() for example, _ in rows]
    all_shards = [shard for shards in shards_by_split.values() for shard in shards]
    fields = ("old_code", "message", "new_code", "context")
    sums = lambda key: dict(sorted(sum((Counter(s[key]) for s in all_shards), Counter()).items()))  # noqa: E731
    return {
        "splits": {split: {
            "commits": len(shards_by_split[split]), "rows": len(examples_by_split[split]),
            "tokens": sum(len(e["input_ids"]) for e, _ in examples_by_split[split]),
            "loss_tokens": sum(len(e["input_ids"]) - e["loss_start"]
                               for e, _ in examples_by_split[split])} for split in SPLITS},
        "tokens_per_field": {field: _distribution([e["field_tokens"][field] for e in all_examples])
                             for field in fields},
        "truncations": sums("truncations"),
        "chunks_truncated_by_size": sum(s["chunk_truncations"] for s in all_shards),
        "skipped": sums("skipped"),
        "files_flagged": sums("flagged"),
        "chunks_by_kind": dict(sorted(Counter(e["kind"] for e in all_examples).items())),
        "chunks_by_change": dict(sorted(Counter(e["change"] for e in all_examples).items())),
        "context_snippets": dict(sorted(sum((Counter(e["context_kinds"]) for e in all_examples),
                                            Counter()).items())),
        "chunks_with_cross_file_definition": round(sum(
            any(kind != "import" for kind in e["context_kinds"]) for e in all_examples)
            / max(len(all_examples), 1), 4),
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
    for split in SPLITS:
        path = out / f"{split}.pt"
        _save_tensors(path, _tensors(examples_by_split[split], settings.max_length,
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
