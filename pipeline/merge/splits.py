"""Token shards split in temporal order in, the segments the merge keeps out.

The leakage guard drops from val and test every segment whose change already appears in
an earlier split (cherry-picks, reverts, re-applied patches); within a split, a target
already seen is a duplicate; commits with a low-information message may be left out.
"""

from __future__ import annotations

from pipeline import store
from pipeline.config import Settings


SPLITS = ("train", "val", "test")


_EMPTY_TARGET = store.digest(b"")


def _count(shard, reason: str) -> None:
    shard.skipped = {**shard.skipped, reason: shard.skipped.get(reason, 0) + 1}


def kept_segments(settings: Settings, shards_by_split: dict, dropped_commits: set) -> dict:
    """id(shard) -> the segments of that shard the merge keeps; each drop is counted on its
    shard. Dropped: every segment of a commit in dropped_commits; in val and test, a
    change an earlier split already holds (the leakage guard); within a split, a target
    (new code) that an earlier commit of the split already has, unless keep_duplicates."""
    guard = settings.leakage_guard
    earlier_splits: set = set()          # leak keys of the splits before this one
    kept = {}
    for split in SPLITS:
        this_split, targets = set(), set()
        for shard in shards_by_split[split]:
            keep = []
            for segment in shard.segments:
                if shard.sha in dropped_commits:
                    _count(shard, "low_information_message_dropped")
                elif guard != "off" and set(segment.leak_keys[guard]) & earlier_splits:
                    _count(shard, f"leakage_{split}")
                elif not settings.keep_duplicates and segment.target_key in targets:
                    _count(shard, "duplicate_target")
                else:
                    keep.append(segment)
            kept[id(shard)] = keep
            # Added after the commit: a repeat within one commit is no duplicate, and a
            # deletion (empty target) never is.
            targets.update(s.target_key for s in keep if s.target_key != _EMPTY_TARGET)
            if guard != "off":
                this_split.update(key for s in keep for key in s.leak_keys[guard])
        earlier_splits |= this_split
    return kept
