"""The rows' lengths and times per split in, dataset/report.png out: tokens per row and
rows per month.

Importing matplotlib takes half a second, as long as drawing. A merge therefore starts a
drawer process (start_drawer) that imports it while the merge works; the report task hands
it the measures (finish_drawing). `python -m pipeline.merge.report` is that process.
"""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

import msgpack

from pipeline.errors import PipelineError

SPLIT_COLOURS = {"train": "#4C72B0", "val": "#DD8452", "test": "#55A868"}


def _month(timestamp: int) -> str:
    return datetime.fromtimestamp(timestamp, timezone.utc).strftime("%Y-%m")


def _months_between(months: set) -> list:
    """Every month from the first to the last, so gaps in the history show as gaps."""
    if not months:
        return []
    year, month = map(int, min(months).split("-"))
    last, calendar = max(months), []
    while f"{year:04d}-{month:02d}" <= last:
        calendar.append(f"{year:04d}-{month:02d}")
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return calendar


def write_report(measures_by_split: dict, output: Path) -> None:
    """measures_by_split: split -> its rows' measures (row_lengths, row_times)."""
    # A Figure drawn by Agg directly: no display on build machines, and without pyplot,
    # whose import alone costs a pull's `doit` 0.3 s.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    # Fixed margins rather than tight_layout, which renders the figure once more to measure it.
    figure = Figure(figsize=(13, 4.8))
    figure.subplots_adjust(left=0.06, right=0.98, top=0.93, bottom=0.2, wspace=0.18)
    FigureCanvasAgg(figure)
    lengths, months = figure.subplots(1, 2)
    for name in SPLIT_COLOURS:
        sizes = measures_by_split[name]["row_lengths"]
        if sizes:
            lengths.hist(sizes, bins=40, histtype="step", linewidth=1.6,
                         color=SPLIT_COLOURS[name], label=f"{name} ({len(sizes)} rows)")
    lengths.set(title="Tokens per row", xlabel="tokens (padding excluded)", ylabel="rows")
    lengths.legend()

    per_month = {name: Counter(_month(t) for t in measures_by_split[name]["row_times"])
                 for name in SPLIT_COLOURS}
    calendar = _months_between(set().union(*per_month.values()))
    edges = [position - 0.5 for position in range(len(calendar) + 1)]
    bottom = [0] * len(calendar)
    for name, counts in per_month.items():
        top = [b + counts.get(month, 0) for b, month in zip(bottom, calendar)]
        # One filled step outline per split, stacked on the one before: a bar chart drawn
        # as three artists, not one patch per month and split.
        if calendar:
            months.stairs(top, edges, baseline=bottom, fill=True,
                          color=SPLIT_COLOURS[name], label=name)
        bottom = top
    step = max(1, len(calendar) // 12)
    months.set_xticks(list(range(len(calendar)))[::step], calendar[::step], rotation=45,
                      ha="right")
    months.set(title="Rows per month of commit", ylabel="rows")
    months.legend()
    temporary = output.with_name(f".{output.name}.tmp.png")
    try:
        figure.savefig(temporary, dpi=100)
        temporary.replace(output)
    except BaseException:
        temporary.unlink(missing_ok=True)     # a full disk needs its space back
        raise


def start_drawer() -> subprocess.Popen:
    """A process that imports matplotlib now and draws the report once given its measures
    (or ends, drawing nothing, when its input closes empty)."""
    root = str(Path(__file__).resolve().parents[2])       # where `pipeline` is imported from
    path = os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))
    return subprocess.Popen([sys.executable, "-m", "pipeline.merge.report"],
                            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, env={**os.environ, "PYTHONPATH": path})


def finish_drawing(drawer: subprocess.Popen, measures_by_split: dict, output: Path) -> None:
    """Have the drawer write the report; its error, if any, is raised here."""
    request = msgpack.packb({"measures": measures_by_split, "output": str(output)})
    _, errors = drawer.communicate(request)
    if drawer.returncode != 0:
        lines = errors.decode(errors="replace").strip().splitlines() or ["no message"]
        raise PipelineError(f"drawing {output} failed: {lines[-1]}")


def _draw_on_request() -> None:
    for module in ("matplotlib.figure", "matplotlib.backends.backend_agg"):
        importlib.import_module(module)        # now, while the merge runs
    request = sys.stdin.buffer.read()
    if request:
        request = msgpack.unpackb(request)
        write_report(request["measures"], Path(request["output"]))


if __name__ == "__main__":
    _draw_on_request()
