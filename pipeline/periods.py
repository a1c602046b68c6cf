"""Commit times in temporal order and the split settings in, where val and test begin out.

Commits are cut into consecutive runs, by ratio of commits or by date: every train commit
is older than every val commit, which is older than every test commit. The merge splits
by it; the tokenizer is trained on the last commit of the train period, so that no
evaluation commit shapes it.
"""

from __future__ import annotations

from datetime import datetime, timezone

from pipeline.config import Settings
from pipeline.errors import PipelineError


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
