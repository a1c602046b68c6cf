"""What a person looks at: a row printed as labelled text, and the PNG report."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from conftest import run_doit
from pipeline.merge.report import _months_between

ROOT = Path(__file__).resolve().parents[1]


def inspect(*args):
    return subprocess.run([sys.executable, "-m", "pipeline.show", *args], cwd=ROOT,
                          capture_output=True, text=True)


def test_a_row_prints_with_labelled_fields_and_provenance(workdir, sample_repo):
    assert run_doit(f"repo={sample_repo}")[0] == 0
    result = inspect("train", "3", "--dataset", str(workdir / "dataset"))
    assert result.returncode == 0, result.stderr
    text = result.stdout
    assert text.startswith("train row 3 of ")
    assert "commit " in text and "crates/" in text
    for label in ("REPOSITORY", "FILE", "OLD CODE", "MESSAGE", "NEW CODE (loss)", "END"):
        assert f"── {label} " in text
    out_of_range = inspect("val", "999", "--dataset", str(workdir / "dataset"))
    assert out_of_range.returncode != 0 and "pick a row from 0 to" in out_of_range.stderr
    assert "Traceback" not in out_of_range.stderr


def test_the_report_is_a_png_redrawn_only_when_the_dataset_changes(workdir, sample_repo):
    code, record = run_doit(f"repo={sample_repo}")
    assert code == 0 and "report" in record.executed
    report = workdir / "dataset" / "report.png"
    assert report.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    code, record = run_doit(f"repo={sample_repo}")
    assert code == 0 and "report" not in record.executed
    code, record = run_doit(f"repo={sample_repo}", "val_ratio=0.2")
    assert code == 0 and "merge" in record.executed and "report" in record.executed
    # Drawn by the process the merge started, or, with no merge in the run, by doit itself:
    # the same picture.
    drawn_by_the_merge = report.read_bytes()
    report.unlink()
    code, record = run_doit(f"repo={sample_repo}", "val_ratio=0.2")
    assert code == 0 and "merge" not in record.executed and "report" in record.executed
    assert report.read_bytes() == drawn_by_the_merge


def test_the_month_axis_has_no_holes():
    assert _months_between({"2023-11", "2024-02"}) == ["2023-11", "2023-12", "2024-01", "2024-02"]
    assert _months_between(set()) == []
