"""Token shards in commit order in, the train / val / test split of each and the segments
the leakage guard keeps out.

Commits keep the commit list's temporal order and are cut into consecutive runs (by ratio
of commits, or by date), so every train commit is older than every val commit, which is
older than every test commit, and a commit's rows are all in one split. The leakage guard
then drops from val and test every segment whose change already appears in an earlier
split (cherry-picks, reverts, re-applied patches).
"""

from __future__ import annotations

from datetime import datetime, timezone

from pipeline.config import Settings
from pipeline.errors import PipelineError

SPLITS = ("train", "val", "test")


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


def guard_leakage(settings: Settings, shards_by_split: dict) -> dict:
    """Drop from val and test the segments whose change an earlier split already holds;
    returns the kept segments per shard and counts the drops on each shard."""
    seen: set = set()
    kept = {}
    for split in SPLITS:
        for shard in shards_by_split[split]:
            keep = []
            for segment in shard.segments:
                keys = set(segment.leak_keys[settings.leakage_guard]) \
                    if settings.leakage_guard != "off" else set()
                if split != "train" and keys & seen:
                    shard.skipped = {**shard.skipped, f"leakage_{split}":
                                     shard.skipped.get(f"leakage_{split}", 0) + 1}
                    continue
                keep.append(segment)
            for segment in keep:
                if settings.leakage_guard != "off":
                    seen.update(segment.leak_keys[settings.leakage_guard])
            kept[id(shard)] = keep
    return kept
