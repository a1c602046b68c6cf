"""Check a build's context against the repository: every snippet from the parent tree must
be there, in the parent commit's version of its file; every same-commit snippet in the
commit's version. Prints the counts and the first few that are not.

    python bench/audit_context.py WORKDIR     # the directory doit ran in (its cache/)

A snippet is checked line by line, leaving out what the snippet builder writes itself:
`{ /* … */ }` after a function's signature, the `;` after a trait member, the `// …` of a cut
definition and the braces closing it, and the same-commit note.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipeline.config import Settings  # noqa: E402
from pipeline.git.commit_list import current_commit_list  # noqa: E402
from pipeline.run.worker import Worker  # noqa: E402
from pipeline.tokens.segments import SAME_COMMIT_NOTE  # noqa: E402

_WRITTEN_BY_THE_BUILDER = {"", "}", "// …", "{ /* … */ }"}


def _file_at(repo: str, commit: str, path: str, memo: dict) -> str:
    if (commit, path) not in memo:
        shown = subprocess.run(["git", "-C", repo, "show", f"{commit}:{path}"],
                               capture_output=True)
        memo[commit, path] = shown.stdout.decode("utf-8", "replace")
    return memo[commit, path]


def _lines(snippet_text: str) -> list:
    lines = []
    for line in snippet_text.removeprefix(SAME_COMMIT_NOTE).split("\n"):
        line = line.strip().removesuffix(" { /* … */ }").removesuffix(";")
        if line not in _WRITTEN_BY_THE_BUILDER:
            lines.append(line)
    return lines


def unseen_snippets(settings: Settings) -> tuple[int, list]:
    """(snippets checked, [(commit, origin, path, name)] of those not where they claim)."""
    listing = current_commit_list(settings)
    worker = Worker(settings)
    checked, unseen, memo = 0, [], {}
    try:
        for commit in listing["commits"]:
            shard = worker.shard("chunks", commit["sha"])
            parent = commit["parents"][0] if commit["parents"] else None
            for chunk in shard.chunks:
                for snippet in chunk.context + chunk.spare_context:
                    if snippet.kind == "import":
                        continue
                    where = parent if snippet.origin == "parent" else commit["sha"]
                    text = _file_at(settings.repository, where, snippet.path, memo) \
                        if where else ""
                    checked += 1
                    if not all(line in text for line in _lines(snippet.text)):
                        unseen.append((commit["sha"], snippet.origin, snippet.path,
                                       snippet.name))
    finally:
        worker.close()
    return checked, unseen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("workdir", type=Path)
    parser.add_argument("--repo", default="", help="repo= of the build (default: the sample)")
    options = parser.parse_args()
    os.chdir(options.workdir)             # the cache's records name paths relative to it
    settings = Settings(repo=options.repo)
    checked, unseen = unseen_snippets(settings)
    print(f"{checked} definition snippets checked, {len(unseen)} not where they claim to be")
    for row in unseen[:10]:
        print("  ", *row)


if __name__ == "__main__":
    main()
