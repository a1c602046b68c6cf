"""The commit list's messages in, the commits whose message carries no information out.

A message says nothing a model could learn from when it is empty, a placeholder ("wip",
"local changes", "fix"), or a handful of words repeated on many commits (a script's
"Update files", a day's "local changes"). Such commits are counted in stats.json;
message_filter=drop leaves them out of the rows.
"""

from __future__ import annotations

import re
from collections import Counter

# Words that, alone or together ("fix tests", "wip"), say nothing about a change.
PLACEHOLDER_WORDS = frozenset("""
wip fix fixes fixed fixup update updates updated change changes changed commit tmp temp
test tests testing misc minor cleanup save stuff work more asdf foo bar todo done ok local
small some
""".split())
# A message of at most this many words, repeated on at least this many commits.
FEW_WORDS, MANY_COMMITS = 4, 5


def normalised(message: str) -> str:
    """The message's first line, lower case, without punctuation at its ends."""
    first = message.strip().split("\n", 1)[0].lower()
    return re.sub(r"\s+", " ", first).strip(" .!:;,-_*#")


def low_information(commits: list) -> set:
    """The shas of commits (commit list entries) whose message carries no information."""
    forms = {commit["sha"]: normalised(commit["message"]) for commit in commits}
    repeated = Counter(forms.values())
    return {sha for sha, form in forms.items()
            if set(form.split()) <= PLACEHOLDER_WORDS
            or (len(form.split()) <= FEW_WORDS and repeated[form] >= MANY_COMMITS)}
