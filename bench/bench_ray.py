"""Wall time of a full build with executor=local and with executor=ray, on the same history.

    python bench/bench_ray.py [--repo PATH | --repos PATH,PATH…] [--runs N] [--jobs J]

--repos builds one dataset from several repositories. Without either: the generated sample extended to 231 commits (the sample alone, 31
commits, is built in the doit process by either executor). Each run builds in a fresh work
directory, local and Ray alternating so that a noisy machine hurts both alike; printed:
the median full-build seconds of each, the seconds of the chunks and tokens stages, and
Ray's time over local's (Ray's includes starting and stopping its local instance).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import tempfile
from pathlib import Path

from bench_scale import ROOT, run_doit  # noqa: F401  (bench_scale puts ROOT on sys.path)
from pipeline.git.sample_repo import extend_sample_repository, generate_sample_repository

EXECUTORS = ("local", "ray")


def sample_history(root: Path, extra: int) -> Path:
    repo = root / "sample"
    generate_sample_repository(repo)
    extend_sample_repository(repo, extra)
    return repo


def one_build(source: str, executor: str, jobs: int) -> dict:
    """source: repo=PATH or repos=PATH,PATH…"""
    workdir = Path(tempfile.mkdtemp(prefix=f"bench-ray-{executor}-"))
    try:
        return run_doit(workdir, source, f"executor={executor}", f"jobs={jobs}")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repo", type=Path, help="repository (default: the extended sample)")
    parser.add_argument("--repos", help="several repositories, comma-separated")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=0, help="processes (0: one per core)")
    parser.add_argument("--extra", type=int, default=200,
                        help="commits added to the sample (without --repo)")
    options = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="bench-ray-repo-"))
    try:
        if options.repos:
            repos = [Path(path).expanduser().resolve() for path in options.repos.split(",")]
            source = "repos=" + ",".join(map(str, repos))
        else:
            repos = [options.repo.expanduser().resolve() if options.repo
                     else sample_history(scratch, options.extra)]
            source = f"repo={repos[0]}"
        commits = sum(int(subprocess.run(["git", "-C", str(repo), "rev-list", "--count", "HEAD"],
                                         capture_output=True, text=True).stdout)
                      for repo in repos)
        runs = {executor: [] for executor in EXECUTORS}
        for _ in range(options.runs):
            for executor in EXECUTORS:
                runs[executor].append(one_build(source, executor, options.jobs))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    named = ", ".join(map(str, repos)) if options.repo or options.repos else "the generated sample"
    print(f"repositories: {named} ({commits} commits), "
          f"{options.runs} runs, jobs={options.jobs or 'one per core'}")
    print(f"{'executor':<10}{'median s':>10}{'min s':>9}{'max s':>9}{'chunks s':>10}"
          f"{'tokens s':>10}")
    medians = {}
    for executor, results in runs.items():
        seconds = [result["seconds"] for result in results]
        medians[executor] = statistics.median(seconds)
        stage = {name: statistics.median(result["stages"].get(name, 0.0) for result in results)
                 for name in ("chunks", "tokens")}
        print(f"{executor:<10}{medians[executor]:>10.2f}{min(seconds):>9.2f}{max(seconds):>9.2f}"
              f"{stage['chunks']:>10.2f}{stage['tokens']:>10.2f}")
    print(f"ray / local: {medians['ray'] / medians['local']:.2f}")


if __name__ == "__main__":
    main()
