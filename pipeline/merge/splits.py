"""Token shards split in temporal order in, the segments the merge keeps out.

The leakage guard drops from val and test every segment whose change already appears in
an earlier split (cherry-picks, reverts, re-applied patches); within a split, a target
already seen is a duplicate; commits with a low-information message may be left out.
"""

from __future__ import annotations

from collections import Counter

from pipeline import store
from pipeline.config import Settings


SPLITS = ("train", "val", "test")


_EMPTY_TARGET = store.digest(b"")


def kept_segments(settings: Settings, summaries_by_split: dict,
                  dropped_commits: set) -> tuple[dict, Counter]:
    """split -> for each commit summary, the positions of the segments the merge keeps;
    and the drops counted by reason. Dropped: every segment of a commit in
    dropped_commits; in val and test, a change an earlier split already holds (the leakage
    guard); within a split, a target (new code) that an earlier commit of the split already
    has, unless keep_duplicates."""
    guard = settings.leakage_guard
    earlier_splits: set = set()          # leak keys of the splits before this one
    kept, drops = {}, Counter()
    for split in SPLITS:
        this_split, targets = set(), set()
        kept[split] = []
        for summary in summaries_by_split[split]:
            keep = []
            for position, segment in enumerate(summary.segments):
                if summary.sha in dropped_commits:
                    drops["low_information_message_dropped"] += 1
                elif guard != "off" and not earlier_splits.isdisjoint(segment.leak_keys(guard)):
                    drops[f"leakage_{split}"] += 1
                elif not settings.keep_duplicates and segment.target_key in targets:
                    drops["duplicate_target"] += 1
                else:
                    keep.append(position)
            kept[split].append(keep)
            # Added after the commit: a repeat within one commit is no duplicate, and a
            # deletion (empty target) never is.
            segments = [summary.segments[position] for position in keep]
            targets.update(s.target_key for s in segments if s.target_key != _EMPTY_TARGET)
            if guard != "off":
                this_split.update(key for s in segments for key in s.leak_keys(guard))
        earlier_splits |= this_split
    return kept, drops
