"""Time the real `doit` command on a repository: full build, no-op, +1 and +10 commits.

    python bench/bench_build.py [REPO] [--runs N]

REPO defaults to the generated sample repository. New commits are simulated by moving
`ref=` forward (REF~11 -> REF~10 -> REF), so any repository can be measured unchanged.
Each measure is the median of N runs in fresh work directories; peak memory is that of
the whole process tree. bench_scale.py does the same at scale, next to its floors.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import tempfile
from pathlib import Path

from bench_scale import build_round, build_rounds, run_doit


def sample_round() -> dict:
    """One round on the generated sample, made by `doit sample_repo` in a fresh directory."""
    workdir = Path(tempfile.mkdtemp(prefix="bench-sample-"))
    try:
        run_doit(workdir, "sample_repo")
        (workdir / "build").mkdir()
        return build_round(workdir / "cache" / "sample_repo", workdir / "build")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("repo", nargs="?", type=Path, help="repository (default: the sample)")
    parser.add_argument("--runs", type=int, default=3)
    options = parser.parse_args()
    repo = options.repo.expanduser().resolve() if options.repo else None
    rounds = (list(build_rounds(repo, options.runs)) if repo
              else [sample_round() for _ in range(options.runs)])
    if repo:
        commits = subprocess.run(["git", "-C", str(repo), "rev-list", "--count", "HEAD"],
                                 capture_output=True, text=True).stdout.strip()
        print(f"repository: {repo} ({commits} commits), {options.runs} runs")
    else:
        print(f"repository: the generated sample, {options.runs} runs")
    print(f"{'measure':<14}{'median s':>10}{'min s':>9}{'max s':>9}{'peak MB':>10}{'CPU %':>7}")
    for measure in rounds[0]:
        seconds = [r[measure]["seconds"] for r in rounds]
        print(f"{measure:<14}{statistics.median(seconds):>10.2f}{min(seconds):>9.2f}"
              f"{max(seconds):>9.2f}{max(r[measure]['peak_mb'] for r in rounds):>10.0f}"
              f"{100 * statistics.median(r[measure]['cpu'] for r in rounds):>7.0f}")


if __name__ == "__main__":
    main()
