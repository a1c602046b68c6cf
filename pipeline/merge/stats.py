"""Split shards, packed rows and kept segments in, the numbers of stats.json out."""

from __future__ import annotations

import statistics
from array import array
from collections import Counter

from pipeline.merge.splits import SPLITS
from pipeline.tokens.segments import ID_TYPE


def _distribution(values: list) -> dict:
    if not values:
        return {"mean": 0, "median": 0, "p95": 0, "max": 0}
    ordered = sorted(values)
    return {"mean": round(statistics.fmean(ordered), 2), "median": statistics.median(ordered),
            "p95": ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))], "max": ordered[-1]}


def _summed(shards: list, key: str) -> dict:
    return dict(sorted(sum((Counter(getattr(shard, key)) for shard in shards),
                           Counter()).items()))


def _tokens(ids: bytes) -> int:
    return len(ids) // array(ID_TYPE).itemsize


def _context_measures(rows: list) -> dict:
    """How a split's real tokens divide: context (imports apart), context repeated within
    its row (the same ids shown twice), loss; and its snippets by origin."""
    tokens = sum(len(e.input_ids) for e, _ in rows)
    loss = sum(end - start for e, _ in rows for start, end in e.loss_spans)
    context = imports = repeated = 0
    origins: Counter = Counter()
    for example, _ in rows:
        seen = set()
        for _, pieces, _ in example.parts:
            for piece in pieces:
                count = _tokens(piece.ids)
                context += count
                imports += count if piece.kind == "import" else 0
                repeated += count if piece.ids in seen else 0
                seen.add(piece.ids)
                origins[piece.origin] += piece.kind != "import"
    share = lambda part: round(part / tokens, 4) if tokens else 0.0  # noqa: E731
    return {"tokens": tokens, "loss_tokens": loss, "context_tokens": context,
            "loss_share": share(loss), "context_share": share(context),
            "import_context_share": share(imports), "repeated_context_share": share(repeated),
            "definitions_by_origin": dict(sorted(origins.items()))}


def dataset_stats(shards_by_split: dict, rows_by_split: dict, segments: list) -> dict:
    shards = [shard for split in SPLITS for shard in shards_by_split[split]]
    rows = [row for split in SPLITS for row in rows_by_split[split]]
    shown = [pieces for example, _ in rows for _, pieces, _ in example.parts]
    field_tokens = {"old_code": [s.field_tokens["old_code"] for s in segments],
                    "message": [_tokens(shard.message) for shard in shards],
                    "new_code": [s.field_tokens["new_code"] for s in segments],
                    "context": [sum(_tokens(p.ids) for p in pieces) for pieces in shown]}
    truncations = Counter(_summed(shards, "truncations"))
    truncations["context_dropped"] += sum(example.context_dropped for example, _ in rows)
    return {
        "splits": {split: {
            "commits": len(shards_by_split[split]), "rows": len(rows_by_split[split]),
            "chunks": sum(len(e.items) for e, _ in rows_by_split[split]),
            **_context_measures(rows_by_split[split])} for split in SPLITS},
        "tokens_per_field": {name: _distribution(values) for name, values in field_tokens.items()},
        "tokens_per_example": _distribution([len(e.input_ids) for e, _ in rows]),
        "truncations": dict(sorted((k, v) for k, v in truncations.items() if v)),
        "skipped": _summed(shards, "skipped"),
        "files_flagged": _summed(shards, "flagged"),
        "missing_objects": sorted({sha for shard in shards for sha in shard.missing_objects}),
        "chunks_by_kind": dict(sorted(Counter(s.kind for s in segments).items())),
        "chunks_by_change": dict(sorted(Counter(s.change for s in segments).items())),
        "context_snippets": dict(sorted(Counter(piece.kind for pieces in shown
                                                for piece in pieces).items())),
        "chunks_with_cross_file_definition": round(sum(
            any(piece.kind != "import" for piece in pieces) for pieces in shown)
            / max(len(shown), 1), 4),
        "context_resolution": _summed(shards, "context_counts"),
        "build_seconds_per_stage": {stage: round(seconds, 2) for stage, seconds in
                                    _summed(shards, "seconds").items()},
    }
