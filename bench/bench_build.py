"""Time the real `doit` command on a repository: full build, no-op, +1 and +10 commits.

    python bench/bench_build.py [REPO] [--runs N]

REPO defaults to the generated sample repository. New commits are simulated by moving
`ref=` forward (REF~11 -> REF~10 -> REF), so any repository can be measured unchanged.
Each measure is the median of N runs in fresh work directories; peak memory is the
largest resident set of the doit process itself (git children not included).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_doit(workdir: Path, *args: str) -> tuple[float, float]:
    """(seconds, peak resident MB) of one `doit` run in workdir."""
    env = {**os.environ, "PIPELINE_CONFIG_DIR": str(workdir)}
    command = [sys.executable, "-m", "doit", "-f", str(ROOT / "dodo.py"), "-d", str(workdir),
               *args]
    started = time.perf_counter()
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"doit {' '.join(args)} failed: {process.stderr.read().decode()}")
    return seconds, usage.ru_maxrss / 1024


def one_round(repo: str) -> dict:
    workdir = Path(tempfile.mkdtemp(prefix="bench-"))
    try:
        base = [f"repo={repo}"] if repo else []
        results = {}
        if not repo:
            run_doit(workdir, "sample_repo")
            repo = str(workdir / "cache" / "sample_repo")
            base = [f"repo={repo}"]
        results["full build"] = run_doit(workdir, *base, "ref=HEAD~11")
        results["no-op"] = run_doit(workdir, *base, "ref=HEAD~11")
        results["+1 commit"] = run_doit(workdir, *base, "ref=HEAD~10")
        results["+10 commits"] = run_doit(workdir, *base, "ref=HEAD")
        return results
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("repo", nargs="?", default="", help="repository (default: the sample)")
    parser.add_argument("--runs", type=int, default=3)
    options = parser.parse_args()
    repo = str(Path(options.repo).expanduser().resolve()) if options.repo else ""
    rounds = [one_round(repo) for _ in range(options.runs)]
    if repo:
        commits = subprocess.run(["git", "-C", repo, "rev-list", "--count", "HEAD"],
                                 capture_output=True, text=True).stdout.strip()
        print(f"repository: {repo} ({commits} commits), {options.runs} runs")
    else:
        print(f"repository: the generated sample, {options.runs} runs")
    print(f"{'measure':<14}{'median s':>10}{'min s':>9}{'max s':>9}{'peak MB':>10}")
    for measure in rounds[0]:
        seconds = [r[measure][0] for r in rounds]
        peak = max(r[measure][1] for r in rounds)
        print(f"{measure:<14}{statistics.median(seconds):>10.2f}{min(seconds):>9.2f}"
              f"{max(seconds):>9.2f}{peak:>10.0f}")


if __name__ == "__main__":
    main()
