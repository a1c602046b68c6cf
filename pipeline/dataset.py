"""Token shards of the commit list in, dataset/{train,val,test}.pt, stats.json, manifest.json out.

Commits keep the commit list's temporal order and are cut into consecutive runs (by ratio
of commits, or by date), so every train commit is older than every val commit, which is
older than every test commit, and a commit's rows are all in one split. Before packing,
the leakage guard drops from val and test every chunk whose change already appears in an
earlier split (cherry-picks, reverts, re-applied patches). The manifest is removed first
and written last: a merge cut short never leaves outputs that look complete.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
import statistics
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

from pipeline import __version__, cache
from pipeline.config import Settings
from pipeline.errors import PipelineError
from pipeline.examples import FIELDS, pack_examples
from pipeline.tensors import commit_tensors, sequential_tensors

SPLITS = ("train", "val", "test")
# Bump when the output files change: part of the merge key.
DATASET_VERSION = 3


def merge_key(settings: Settings, token_keys: list, tokenizer_hash: str) -> str:
    return cache.content_key([token_keys, tokenizer_hash,
                              settings.section_hash(settings.split_section()), DATASET_VERSION])


def _timestamp(text: str, name: str) -> float:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise PipelineError(f"{name}={text!r} is not a date; use YYYY-MM-DD or an ISO "
                            "date-time such as 2024-05-01T12:00:00+00:00.") from None
    return (moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)).timestamp()


def split_bounds(times: list, settings: Settings) -> tuple[int, int]:
    """Indices where val and test begin in the temporally ordered commit times."""
    count = len(times)
    if settings.val_from or settings.test_from:
        test_from = _timestamp(settings.test_from, "test_from") if settings.test_from else None
        val_from = _timestamp(settings.val_from, "val_from") if settings.val_from else test_from
        first = lambda moment: next((i for i, t in enumerate(times) if t >= moment), count)  # noqa: E731
        test_start = first(test_from) if test_from is not None else count
        return min(first(val_from) if val_from is not None else test_start, test_start), test_start
    test = round(count * settings.test_ratio)
    val = round(count * settings.val_ratio)
    train = max(count - val - test, 1 if count else 0)
    return train, min(train + val, count)


def _guard_leakage(settings: Settings, shards_by_split: dict) -> dict:
    """Drop from val and test the segments whose change an earlier split already holds;
    returns the kept segments per shard and counts the drops on each shard."""
    seen: set = set()
    kept = {}
    for split in SPLITS:
        for shard in shards_by_split[split]:
            keep = []
            for segment in shard["segments"]:
                keys = set(segment["leak_keys"][settings.leakage_guard]) \
                    if settings.leakage_guard != "off" else set()
                if split != "train" and keys & seen:
                    shard["skipped"] = {**shard["skipped"], f"leakage_{split}":
                                        shard["skipped"].get(f"leakage_{split}", 0) + 1}
                    continue
                keep.append(segment)
            for segment in keep:
                if settings.leakage_guard != "off":
                    seen.update(segment["leak_keys"][settings.leakage_guard])
            kept[id(shard)] = keep
    return kept


def _distribution(values: list) -> dict:
    if not values:
        return {"mean": 0, "median": 0, "p95": 0, "max": 0}
    ordered = sorted(values)
    return {"mean": round(statistics.fmean(ordered), 2), "median": statistics.median(ordered),
            "p95": ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))], "max": ordered[-1]}


def _summed(shards: list, key: str) -> dict:
    return dict(sorted(sum((Counter(shard[key]) for shard in shards), Counter()).items()))


def _stats(shards_by_split: dict, rows_by_split: dict, segments: list) -> dict:
    shards = [shard for split in SPLITS for shard in shards_by_split[split]]
    examples = [example for split in SPLITS for example, _ in rows_by_split[split]]
    return {
        "splits": {split: {
            "commits": len(shards_by_split[split]), "rows": len(rows_by_split[split]),
            "chunks": sum(len(e["items"]) for e, _ in rows_by_split[split]),
            "tokens": sum(len(e["input_ids"]) for e, _ in rows_by_split[split]),
            "loss_tokens": sum(end - start for e, _ in rows_by_split[split]
                               for start, end in e["loss_spans"])} for split in SPLITS},
        "tokens_per_field": {field: _distribution([s["field_tokens"][field] for s in segments])
                             for field in FIELDS},
        "tokens_per_example": _distribution([len(e["input_ids"]) for e in examples]),
        "truncations": _summed(shards, "truncations"),
        "chunks_truncated_by_size": sum(shard["chunk_truncations"] for shard in shards),
        "skipped": _summed(shards, "skipped"),
        "files_flagged": _summed(shards, "flagged"),
        "missing_objects": sorted({sha for shard in shards for sha in shard["missing_objects"]}),
        "chunks_by_kind": dict(sorted(Counter(s["kind"] for s in segments).items())),
        "chunks_by_change": dict(sorted(Counter(s["change"] for s in segments).items())),
        "context_snippets": dict(sorted(sum((Counter(s["context_kinds"]) for s in segments),
                                            Counter()).items())),
        "chunks_with_cross_file_definition": round(sum(
            any(kind != "import" for kind in s["context_kinds"]) for s in segments)
            / max(len(segments), 1), 4),
        "context_resolution": _summed(shards, "context_counts"),
        "build_seconds_per_stage": {stage: round(seconds, 2) for stage, seconds in
                                    _summed(shards, "seconds").items()},
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
    import torch  # here, not at the top: importing torch costs a no-op `doit` a second

    temporary = path.with_name(f".{path.name}.tmp")
    torch.save(tensors, temporary)
    temporary.replace(path)


def _iso(timestamp: int) -> str:
    return datetime.fromtimestamp(timestamp, timezone.utc).isoformat()


def _commit_range(shards: list) -> dict | None:
    if not shards:
        return None
    return {"commits": len(shards), "first_commit": shards[0]["sha"],
            "last_commit": shards[-1]["sha"], "first_date": _iso(shards[0]["committer_time"]),
            "last_date": _iso(shards[-1]["committer_time"])}


def merge(settings: Settings, listing: dict, shards: list, tokenizer_info: dict,
          special: dict, key: str) -> dict:
    """Write the split tensors, stats and manifest from the token shards in commit order;
    returns the stats."""
    out = settings.dataset
    out.mkdir(parents=True, exist_ok=True)
    (out / "manifest.json").unlink(missing_ok=True)
    val_start, test_start = split_bounds([s["committer_time"] for s in shards], settings)
    shards_by_split = dict(zip(SPLITS, (shards[:val_start], shards[val_start:test_start],
                                        shards[test_start:])))
    kept = _guard_leakage(settings, shards_by_split)
    rows_by_split = {split: [(example, shard) for shard in shards_by_split[split]
                             for example in pack_examples(settings, special, shard["name_ids"],
                                                          kept[id(shard)])]
                     for split in SPLITS}
    to_tensors = sequential_tensors if settings.example_mode == "sequential" else commit_tensors
    files = {}
    for split in SPLITS:
        files[f"{split}.pt"] = out / f"{split}.pt"
        _save_tensors(files[f"{split}.pt"], to_tensors(rows_by_split[split], settings.max_length,
                                                       special["<pad>"]))
    shutil.copyfile(tokenizer_info["path"], out / "tokenizer.json")
    files["tokenizer.json"] = out / "tokenizer.json"
    segments = [s for shard in shards for s in kept[id(shard)]]
    stats = _stats(shards_by_split, rows_by_split, segments)
    _write_json(out / "stats.json", stats)
    files["stats.json"] = out / "stats.json"
    manifest = {
        "pipeline_version": __version__, "merge_key": key,
        "settings": dataclasses.asdict(settings),
        "repository": listing["repo"], "ref": listing["ref"], "head": listing["head"],
        "shallow_boundary": listing.get("shallow", []),
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
