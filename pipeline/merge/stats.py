"""Commit summaries, kept segments and the measures of written rows in, stats.json out."""

from __future__ import annotations

import statistics
from collections import Counter

from pipeline.merge.splits import SPLITS


def _distribution(values: list) -> dict:
    if not values:
        return {"mean": 0, "median": 0, "p95": 0, "max": 0}
    ordered = sorted(values)
    return {"mean": round(statistics.fmean(ordered), 2), "median": statistics.median(ordered),
            "p95": ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))], "max": ordered[-1]}


def _summed(summaries: list, name: str) -> dict:
    total = Counter()
    for summary in summaries:
        total.update(summary.counts.get(name, {}))
    return dict(sorted((+total).items()))          # + drops zeros, as summing Counters did


def combined_measures(parts: list) -> dict:
    """The measures of several commits' (or parts') rows as one."""
    counts, kinds, origins = Counter(), Counter(), Counter()
    lengths, times, context = [], [], []
    for measures in parts:
        counts.update(measures["counts"])
        kinds.update(measures["snippet_kinds"])
        origins.update(measures["origins"])        # update keeps a zero (old code: +=)
        lengths += measures["row_lengths"]
        times += measures["row_times"]
        context += measures["context_per_part"]
    return {"counts": dict(counts), "row_lengths": lengths, "row_times": times,
            "context_per_part": context,
            "snippet_kinds": dict(kinds), "origins": dict(origins)}


def _split_stats(summaries: list, measures: dict) -> dict:
    """How a split's real tokens divide: context (imports apart), context repeated within
    its row (the same ids shown twice), loss; and its snippets by origin."""
    counts = Counter(measures["counts"])
    tokens = counts["tokens"]
    share = lambda part: round(part / tokens, 4) if tokens else 0.0  # noqa: E731
    return {"commits": len(summaries), "rows": len(measures["row_lengths"]),
            "chunks": counts["parts"], "tokens": tokens, "loss_tokens": counts["loss_tokens"],
            "context_tokens": counts["context_tokens"], "loss_share": share(counts["loss_tokens"]),
            "context_share": share(counts["context_tokens"]),
            "import_context_share": share(counts["import_tokens"]),
            "repeated_context_share": share(counts["repeated_tokens"]),
            "definitions_by_origin": dict(sorted(measures["origins"].items()))}


def dataset_stats(summaries_by_split: dict, kept: dict, measures_by_split: dict,
                  drops: Counter) -> dict:
    summaries = [s for split in SPLITS for s in summaries_by_split[split]]
    segments = [summary.segments[position] for split in SPLITS
                for summary, positions in zip(summaries_by_split[split], kept[split])
                for position in positions]
    every = combined_measures([measures_by_split[split] for split in SPLITS])
    counts = Counter(every["counts"])
    field_tokens = {"old_code": [s.old_tokens for s in segments],
                    "message": [summary.message_tokens for summary in summaries],
                    "new_code": [s.new_tokens for s in segments],
                    "context": every["context_per_part"]}
    truncations = Counter(_summed(summaries, "truncations"))
    truncations["context_dropped"] += counts["context_dropped"]
    truncations["segment_over_max_length"] += counts["segment_over_max_length"]
    skipped = Counter(_summed(summaries, "skipped")) + drops
    return {
        "splits": {split: _split_stats(summaries_by_split[split], measures_by_split[split])
                   for split in SPLITS},
        "tokens_per_field": {name: _distribution(values) for name, values in field_tokens.items()},
        "tokens_per_example": _distribution(every["row_lengths"]),
        "truncations": dict(sorted((k, v) for k, v in truncations.items() if v)),
        "skipped": dict(sorted(skipped.items())),
        "files_flagged": _summed(summaries, "flagged"),
        "missing_objects": sorted({sha for s in summaries for sha in s.missing_objects}),
        "chunks_by_kind": dict(sorted(Counter(s.kind for s in segments).items())),
        "chunks_by_change": dict(sorted(Counter(s.change for s in segments).items())),
        "context_snippets": dict(sorted(every["snippet_kinds"].items())),
        "chunks_with_cross_file_definition": round(
            counts["parts_with_definition"] / max(counts["parts"], 1), 4),
        "context_resolution": _summed(summaries, "context_counts"),
        "build_seconds_per_stage": {stage: round(seconds, 2) for stage, seconds in
                                    _summed(summaries, "seconds").items()},
    }


def repository_stats(names: list, sources: list, bounds: dict, summaries_by_split: dict,
                     kept: dict) -> dict:
    """Per repository and split: commits, the chunks kept as targets and their new-code
    tokens (the loss, before packing cuts any), from the summaries, in repos= order."""
    found = {name: {split: Counter() for split in SPLITS} for name in names}
    for split, (start, _) in bounds.items():
        for offset, (summary, positions) in enumerate(zip(summaries_by_split[split],
                                                          kept[split])):
            counts = found[names[sources[start + offset]]][split]
            counts["commits"] += 1
            counts["chunks"] += len(positions)
            counts["new_code_tokens"] += sum(summary.segments[p].new_tokens for p in positions)
    return {name: {split: {field: counts[field] for field in
                           ("commits", "chunks", "new_code_tokens")}
                   for split, counts in splits.items()}
            for name, splits in found.items()}
