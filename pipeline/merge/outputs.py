"""Token shards of the commit list in, dataset/{train,val,test}.pt and .jsonl,
tokenizer.json, stats.json and manifest.json out.

The manifest is removed first and written last: a merge cut short never leaves outputs
that look complete.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

from pipeline import __version__, store
from pipeline.config import Settings
from pipeline.merge.export import write_jsonl
from pipeline.merge.messages import low_information
from pipeline.merge.packing import pack_examples
from pipeline.merge.splits import SPLITS, kept_segments
from pipeline.periods import split_bounds
from pipeline.merge.stats import dataset_stats
from pipeline.merge.tensors import commit_tensors, sequential_tensors
from pipeline.tokens.layout import layout_of
from pipeline.tokens.segments import NAME_TOKENS

# Bump when the output files change: part of the merge key.
DATASET_VERSION = 4


def merge_key(settings: Settings, token_keys: list, tokenizer_hash: str, name: str) -> str:
    return store.content_key([token_keys, tokenizer_hash, name,
                              settings.section_hash(settings.split_section()), DATASET_VERSION])


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _write_json(path: Path, value) -> None:
    store.write_atomic(path, (json.dumps(value, indent=2, sort_keys=True) + "\n").encode())


class _KeepWriteError:
    """A file for torch.save that remembers why a write failed: torch reports a failed write
    as a RuntimeError without the reason, and the user needs it (no space, no permission)."""

    def __init__(self, handle):
        self.handle, self.error = handle, None

    def write(self, data) -> int:
        try:
            return self.handle.write(data)
        except OSError as error:
            self.error = error
            raise

    def flush(self) -> None:
        self.handle.flush()


def _save_tensors(path: Path, tensors: dict) -> None:
    """torch.save to a temporary file renamed into place; one that fails is removed (on a
    full disk, its space is what the next run needs)."""
    import torch  # here, not at the top: importing torch costs a no-op `doit` a second

    temporary = path.with_name(f".{path.name}.tmp")
    try:
        with open(temporary, "wb") as handle:
            writer = _KeepWriteError(handle)
            try:
                torch.save(tensors, writer)
            except RuntimeError:
                if writer.error is None:
                    raise
                raise OSError(writer.error.errno, writer.error.strerror, str(path)) from None
        temporary.replace(path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def _iso(timestamp: int) -> str:
    return datetime.fromtimestamp(timestamp, timezone.utc).isoformat()


def _commit_range(shards: list) -> dict | None:
    if not shards:
        return None
    return {"commits": len(shards), "first_commit": shards[0].sha,
            "last_commit": shards[-1].sha, "first_date": _iso(shards[0].committer_time),
            "last_date": _iso(shards[-1].committer_time)}


def _manifest(settings, listing, key, tokenizer_info, tokenizer, layout, shards_by_split,
              files) -> dict:
    """Everything needed to know what the outputs are and to reproduce them."""
    return {
        "pipeline_version": __version__, "merge_key": key,
        "settings": dataclasses.asdict(settings),
        "repository": listing["repo"], "repository_name": listing["name"],
        "ref": listing["ref"], "head": listing["head"],
        "shallow_boundary": listing.get("shallow", []),
        "tokenizer": {"hash": tokenizer_info["hash"], "source": tokenizer_info["source"],
                      "trained_on_commit": tokenizer_info["trained_on_commit"],
                      "layout": layout.describe(), "added_tokens": {
                          token: tokenizer.token_to_id(token)
                          for token in tokenizer_info["added_tokens"]}},
        "splits": {split: _commit_range(shards_by_split[split]) for split in SPLITS},
        "files": {name: {"sha256": _sha256(path), "bytes": path.stat().st_size}
                  for name, path in sorted(files.items())},
    }


def _rows(settings, layout, shards_by_split: dict, kept: dict, name_ids: list,
          counts: Counter) -> dict:
    """split -> [(example, token shard)] in commit order."""
    return {split: [(example, shard) for shard in shards_by_split[split]
                    for example in pack_examples(settings, layout, name_ids, shard.message,
                                                 kept[id(shard)], counts)]
            for split in SPLITS}


def merge(settings: Settings, listing: dict, shards: list, tokenizer_info: dict,
          tokenizer, key: str) -> dict:
    """Write the split tensors and texts, stats and manifest from the token shards in
    commit order; returns the stats."""
    out = settings.dataset
    out.mkdir(parents=True, exist_ok=True)
    (out / "manifest.json").unlink(missing_ok=True)
    layout = layout_of(tokenizer)
    val_start, test_start = split_bounds([s.committer_time for s in shards], settings)
    shards_by_split = dict(zip(SPLITS, (shards[:val_start], shards[val_start:test_start],
                                        shards[test_start:])))
    uninformative = low_information(listing["commits"])
    kept = kept_segments(settings, shards_by_split,
                         uninformative if settings.message_filter == "drop" else set())
    name_ids = tokenizer.encode(listing["name"], add_special_tokens=False).ids[:NAME_TOKENS]
    packing = Counter()
    rows_by_split = _rows(settings, layout, shards_by_split, kept, name_ids, packing)
    to_tensors = sequential_tensors if settings.example_mode == "sequential" else commit_tensors
    files = {}
    for split in SPLITS:
        files[f"{split}.pt"] = out / f"{split}.pt"
        _save_tensors(files[f"{split}.pt"], to_tensors(rows_by_split[split], settings.max_length,
                                                       layout.pad_id))
        files[f"{split}.jsonl"] = out / f"{split}.jsonl"
        write_jsonl(files[f"{split}.jsonl"], tokenizer, layout, rows_by_split[split])
    shutil.copyfile(tokenizer_info["path"], out / "tokenizer.json")
    files["tokenizer.json"] = out / "tokenizer.json"
    segments = [s for shard in shards for s in kept[id(shard)]]
    stats = dataset_stats(shards_by_split, rows_by_split, segments)
    stats["truncations"] = dict(sorted((Counter(stats["truncations"]) + packing).items()))
    stats["low_information_messages"] = {
        split: sum(shard.sha in uninformative for shard in shards_by_split[split])
        for split in SPLITS}
    _write_json(out / "stats.json", stats)
    files["stats.json"] = out / "stats.json"
    manifest = _manifest(settings, listing, key, tokenizer_info, tokenizer, layout,
                         shards_by_split, files)
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
