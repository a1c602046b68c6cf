"""Speed and memory at scale: synthetic histories, the real `doit`, and two floors.

    python bench/bench_scale.py [--runs 3] [--long] [--repo PATH]

For the 600-commit / ~360k-line synthetic history (or --repo PATH) it times, each as the
median of --runs fresh runs: the full build from empty, a no-op `doit`, `doit` after 1 and
after 10 new commits (the ref moved forward: HEAD~11 -> HEAD~10 -> HEAD), the peak
resident memory of the whole process tree, its CPU use over the whole run and over the
per-commit stages (from the chunks stage to the merge: are both cores busy?), the
seconds of each stage and the tokens stage's share of the whole. In the same run it
measures two floors: `git log -p` over the Rust files, and tree-sitter parsing every
distinct changed Rust file version once. --long adds the no-op `doit` on a 20,000-commit history.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from synthetic_history import write_history  # noqa: E402

PAGE = os.sysconf("SC_PAGE_SIZE")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def _tree_sample(root: int) -> tuple:
    """(resident bytes, CPU seconds) of root and its live descendants (with the children
    each has reaped), from one pass over /proc/*/stat. Sampled every 0.1 s it takes about
    2 % of a core from the build it measures; two passes every 50 ms took 9 %."""
    children: dict = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat", "rb") as handle:
                    fields = handle.read().rsplit(b")", 1)[1].split()
                children.setdefault(int(fields[1]), []).append((int(entry), fields))
            except (OSError, IndexError):
                continue
    try:
        with open(f"/proc/{root}/stat", "rb") as handle:
            own = handle.read().rsplit(b")", 1)[1].split()
    except OSError:
        return 0, 0.0
    pages, ticks, stack, todo = 0, 0, [root], [own]
    while stack:
        for child, fields in children.get(stack.pop(), []):
            todo.append(fields)
            stack.append(child)
    for fields in todo:                # utime, stime, cutime, cstime; rss in pages
        ticks += sum(int(value) for value in fields[11:15])
        pages += int(fields[21])
    return pages * PAGE, ticks / CLOCK_TICKS


def run_doit(workdir: Path, *args: str) -> dict:
    """One `doit` run: wall seconds, peak MB of the process tree, CPU use (user + system
    seconds of the whole tree over wall seconds, and over the per-commit stages alone:
    from the first chunks line to the merge) and the seconds per stage it printed."""
    env = {**os.environ, "PIPELINE_CONFIG_DIR": str(workdir)}
    command = [sys.executable, "-m", "doit", "-f", str(ROOT / "dodo.py"), "-d", str(workdir),
               *args]
    # The last run's files written out first, so that this run is timed, not the kernel
    # writing back what the one before wrote: after cargo's full build (3 GB of cache and
    # outputs) a no-op took 1.6-2.0 s at 88 % CPU, against 1.1-1.4 s once that was done.
    os.sync()
    cpu_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE)
    peak, samples, marks, lines = [0], [], {}, []

    def sample():
        while process.poll() is None:
            rss, cpu = _tree_sample(process.pid)
            peak[0] = max(peak[0], rss)
            samples.append((time.perf_counter(), cpu))
            time.sleep(0.1)

    def read_stderr():
        lines.append(process.stderr.read())

    sampler, errors = threading.Thread(target=sample), threading.Thread(target=read_stderr)
    sampler.start()
    errors.start()
    output = []
    for line in process.stdout:                # when the per-commit stages begin and end
        text = line.decode(errors="replace")
        output.append(text)
        if "chunks:" in text:
            marks.setdefault("stages", time.perf_counter())
        if text.startswith(".  merge"):
            marks.setdefault("merge", time.perf_counter())
    process.wait()
    sampler.join()
    errors.join()
    seconds = time.perf_counter() - started
    cpu_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if process.returncode != 0:
        raise SystemExit(f"doit {' '.join(args)} failed:\n{lines[0].decode()[-2000:]}")
    cpu = (cpu_after.ru_utime - cpu_before.ru_utime) + (cpu_after.ru_stime - cpu_before.ru_stime)
    stages = {name: float(value) for name, value in
              re.findall(r"(chunks|tokens|merge) ([0-9.]+)s", "".join(output))}
    return {"seconds": seconds, "peak_mb": peak[0] / 1e6, "cpu": cpu / seconds,
            "stage_cpu": _window_cpu(samples, marks.get("stages"), marks.get("merge")),
            "stages": stages}


def _window_cpu(samples: list, start: float | None, end: float | None) -> float | None:
    """CPU use of the process tree between two moments, from the samples nearest them."""
    inside = [(when, cpu) for when, cpu in samples
              if start is not None and end is not None and start <= when <= end]
    if len(inside) < 2 or inside[-1][0] - inside[0][0] < 1.0:
        return None                              # too short to say
    return (inside[-1][1] - inside[0][1]) / (inside[-1][0] - inside[0][0])


def git_log_floor(repo: Path) -> float:
    started = time.perf_counter()
    subprocess.run(["git", "-C", str(repo), "log", "-p", "--no-merges", "--", "*.rs"],
                   stdout=subprocess.DEVNULL, check=True)
    return time.perf_counter() - started


def parse_floor(repo: Path) -> tuple[float, int, int]:
    """(seconds, versions, bytes): tree-sitter parse of every distinct changed .rs version."""
    from pipeline.rust.parsing import get_parser
    raw = subprocess.run(["git", "-C", str(repo), "log", "--format=", "--raw", "--no-abbrev",
                          "-m", "--first-parent", "--", "*.rs"], capture_output=True,
                         text=True, check=True).stdout
    blobs = sorted({line.split()[3] for line in raw.splitlines()   # no deletions, submodules
                    if line.startswith(":") and line.split()[3] != "0" * 40
                    and line.split()[1] != "160000"})
    batch = subprocess.run(["git", "-C", str(repo), "cat-file", "--batch"],
                           input="\n".join(blobs).encode() + b"\n", capture_output=True,
                           check=True).stdout
    sources, position = [], 0
    while position < len(batch):
        header_end = batch.index(b"\n", position)
        header = batch[position:header_end].split()
        if header[-1] == b"missing":                  # a pruned object: nothing to parse
            position = header_end + 1
            continue
        size = int(header[2])
        sources.append(batch[header_end + 1:header_end + 1 + size])
        position = header_end + 1 + size + 1
    parser = get_parser()
    started = time.perf_counter()
    for source in sources:
        parser.parse(source)
    return time.perf_counter() - started, len(sources), sum(map(len, sources))


def build_round(repo: Path, workdir: Path) -> dict:
    base = [f"repo={repo}"]
    return {"full build": run_doit(workdir, *base, "ref=HEAD~11"),
            "no-op": run_doit(workdir, *base, "ref=HEAD~11"),
            "+1 commit": run_doit(workdir, *base, "ref=HEAD~10"),
            "+10 commits": run_doit(workdir, *base, "ref=HEAD")}


def build_rounds(repo: Path, runs: int):
    """runs build rounds, each in a new workdir. The workdirs are removed after the last
    round, not between rounds: on a filesystem without a journal (this machine's ext4),
    creating files right after thousands were deleted is slower, and a ripgrep build that
    followed the deletion of the previous round's workdir took 5 % longer (11.7-12.2 s
    against 11.3-11.5 s, three alternating pairs). So all the workdirs exist until then:
    runs times one build's cache on disk. (bench_build.py's rounds on the small generated
    sample still clean up as they go.)"""
    workdirs = []
    try:
        for _ in range(runs):
            workdirs.append(Path(tempfile.mkdtemp(prefix="bench-scale-")))
            yield build_round(repo, workdirs[-1])
    finally:
        for workdir in workdirs:
            shutil.rmtree(workdir, ignore_errors=True)


def noop_round(repo: Path) -> float:
    workdir = Path(tempfile.mkdtemp(prefix="bench-long-"))
    try:
        run_doit(workdir, f"repo={repo}")
        return run_doit(workdir, f"repo={repo}")["seconds"]
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _percent(values: list, decimals: int = 0) -> str:
    known = [value for value in values if value is not None]
    return f"{100 * statistics.median(known):.{decimals}f}" if known else "-"


def synthetic(name: str, **shape) -> Path:
    path = Path(tempfile.gettempdir()) / f"bench-history-{name}"
    if not (path / ".git").is_dir():
        write_history(path, **shape)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--repo", type=Path, help="a real repository instead of the synthetic one")
    parser.add_argument("--long", action="store_true", help="also the 20,000-commit no-op")
    options = parser.parse_args()
    repo = options.repo.resolve() if options.repo else synthetic(
        "large", commits=600, files=1_100, lines=320_000, edits=28, merge_every=3)
    log_seconds = statistics.median(git_log_floor(repo) for _ in range(options.runs))
    parses = [parse_floor(repo) for _ in range(options.runs)]
    parse_seconds = statistics.median(p[0] for p in parses)
    rounds = list(build_rounds(repo, options.runs))
    print(f"repository: {repo}, {options.runs} runs, medians")
    print(f"floor git log -p (Rust files): {log_seconds:.2f} s")
    print(f"floor tree-sitter parse of {parses[0][1]} distinct versions "
          f"({parses[0][2] / 1e6:.0f} MB): {parse_seconds:.2f} s")
    print(f"{'measure':<14}{'median s':>10}{'min s':>8}{'max s':>8}{'peak MB':>9}"
          f"{'CPU %':>7}{'stages CPU %':>14}{'/ parse floor':>15}{'tokens %':>9}"
          "  stages (s, median)")
    for measure in rounds[0]:
        runs = [r[measure] for r in rounds]
        seconds = [run["seconds"] for run in runs]
        median = statistics.median(seconds)
        stages = {stage: statistics.median(run["stages"].get(stage, 0.0) for run in runs)
                  for stage in ("chunks", "tokens", "merge")}
        # The tokens stage's share of each run's whole time, median over the runs, to a
        # tenth of a percent: its target is a bound (20 %) that a whole number hides.
        tokens_share = _percent([run["stages"].get("tokens", 0.0) / run["seconds"]
                                 for run in runs], decimals=1)
        print(f"{measure:<14}{median:>10.2f}{min(seconds):>8.2f}{max(seconds):>8.2f}"
              f"{max(run['peak_mb'] for run in runs):>9.0f}"
              f"{100 * statistics.median(run['cpu'] for run in runs):>7.0f}"
              f"{_percent([run['stage_cpu'] for run in runs]):>14}"
              f"{median / parse_seconds:>15.2f}{tokens_share:>9}  "
              + ", ".join(f"{stage} {value:.1f}" for stage, value in stages.items()))
    if options.long:
        long_repo = synthetic("long", commits=20_000, files=300, lines=40_000, edits=2,
                              merge_every=0)
        noop = statistics.median(noop_round(long_repo) for _ in range(options.runs))
        print(f"no-op, 20,000-commit history: {noop:.2f} s")


if __name__ == "__main__":
    main()
