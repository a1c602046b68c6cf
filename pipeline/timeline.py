"""The commit lists of the run's repositories in, one history in temporal order out.

Several repositories make one dataset (repos=): their commits are merged by commit time,
each repository's own order kept, so that one cut splits them all at the same date and no
repository's later code trains a model that is evaluated on another's earlier code. A
commit that several repositories have (a fork and its upstream) is taken once, as the
first one's in repos= order. The timeline of one repository is its commit list as it is.
"""

from __future__ import annotations

import heapq
from typing import NamedTuple

from pipeline.errors import PipelineError


class Timeline(NamedTuple):
    commits: list      # commit dicts, in temporal order across the repositories
    sources: list      # per commit, the index of its repository in listings
    listings: list     # each repository's commit list (with its "name"), in repos= order
    shared: list       # per repository, its commits that an earlier one has (left out)

    @property
    def names(self) -> list:
        return [listing["name"] for listing in self.listings]

    def shas_of(self, source: int) -> list:
        """The shas of one repository's commits here, in its own order: its commits less
        those an earlier repository has (the ones its tasks build)."""
        return [commit["sha"] for commit, index in zip(self.commits, self.sources)
                if index == source]


def make_timeline(listings: list) -> Timeline:
    names = [listing["name"] for listing in listings]
    for name in set(names):
        if names.count(name) > 1:
            paths = ", ".join(listing["repo"] for listing in listings if listing["name"] == name)
            raise PipelineError(
                f"the repositories {paths} are all named {name!r} (from their origin remote or "
                "directory name), and rows and stats tell repositories apart by name. Give "
                "one of them another directory name or origin remote.")
    if len(listings) == 1:
        commits = listings[0]["commits"]
        return Timeline(commits, [0] * len(commits), listings, [0])
    # heapq.merge takes ties from the earlier list first, and never reorders a list.
    merged = heapq.merge(*[[(commit["committer_time"], index, commit)
                            for commit in listing["commits"]]
                           for index, listing in enumerate(listings)],
                         key=lambda entry: entry[0])
    commits, sources, shared, seen = [], [], [0] * len(listings), set()
    for _, index, commit in merged:
        # A fork or clone shares its history with another repository: each shared commit
        # is the first repository's (its copies have the same time, so it comes first).
        if commit["sha"] in seen:
            shared[index] += 1
            continue
        seen.add(commit["sha"])
        commits.append(commit)
        sources.append(index)
    return Timeline(commits, sources, listings, shared)
