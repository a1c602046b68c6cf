"""Split shards, packed rows and kept segments in, the numbers of stats.json out."""

from __future__ import annotations

import statistics
from collections import Counter

from pipeline.merge.splits import SPLITS
from pipeline.tokens.segments import FIELDS


def _distribution(values: list) -> dict:
    if not values:
        return {"mean": 0, "median": 0, "p95": 0, "max": 0}
    ordered = sorted(values)
    return {"mean": round(statistics.fmean(ordered), 2), "median": statistics.median(ordered),
            "p95": ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))], "max": ordered[-1]}


def _summed(shards: list, key: str) -> dict:
    return dict(sorted(sum((Counter(getattr(shard, key)) for shard in shards),
                           Counter()).items()))


def dataset_stats(shards_by_split: dict, rows_by_split: dict, segments: list) -> dict:
    shards = [shard for split in SPLITS for shard in shards_by_split[split]]
    examples = [example for split in SPLITS for example, _ in rows_by_split[split]]
    return {
        "splits": {split: {
            "commits": len(shards_by_split[split]), "rows": len(rows_by_split[split]),
            "chunks": sum(len(e.items) for e, _ in rows_by_split[split]),
            "tokens": sum(len(e.input_ids) for e, _ in rows_by_split[split]),
            "loss_tokens": sum(end - start for e, _ in rows_by_split[split]
                               for start, end in e.loss_spans)} for split in SPLITS},
        "tokens_per_field": {field: _distribution([s.field_tokens[field] for s in segments])
                             for field in FIELDS},
        "tokens_per_example": _distribution([len(e.input_ids) for e in examples]),
        "truncations": _summed(shards, "truncations"),
        "chunks_truncated_by_size": sum(shard.chunk_truncations for shard in shards),
        "skipped": _summed(shards, "skipped"),
        "files_flagged": _summed(shards, "flagged"),
        "missing_objects": sorted({sha for shard in shards for sha in shard.missing_objects}),
        "chunks_by_kind": dict(sorted(Counter(s.kind for s in segments).items())),
        "chunks_by_change": dict(sorted(Counter(s.change for s in segments).items())),
        "context_snippets": dict(sorted(sum((Counter(s.context_kinds) for s in segments),
                                            Counter()).items())),
        "chunks_with_cross_file_definition": round(sum(
            any(kind != "import" for kind in s.context_kinds) for s in segments)
            / max(len(segments), 1), 4),
        "context_resolution": _summed(shards, "context_counts"),
        "build_seconds_per_stage": {stage: round(seconds, 2) for stage, seconds in
                                    _summed(shards, "seconds").items()},
    }
