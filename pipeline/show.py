"""A split row in, its text out: fields labelled, loss marked, provenance on top.

    python -m pipeline.show            row 0 of the train split (dataset/train-*.pt)
    python -m pipeline.show val 12     row 12 of the val split
    python -m pipeline.show test 3 --dataset other/dataset
    python -m pipeline.show val 12 --json  the same row as JSON (its line of val-*.jsonl)
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from datetime import datetime, timezone
from pathlib import Path

from tokenizers import Tokenizer

from pipeline.loading import jsonl_lines, load_parts, part_paths
from pipeline.merge.tensors import IGNORE_INDEX
from pipeline.tokens.segments import SAME_COMMIT_NOTE

# What the text after each role's marker is, for the labels of the printout.
ROLE_LABELS = {"repo": "REPOSITORY", "file": "FILE", "before": "OLD CODE",
               "message": "MESSAGE", "after": "NEW CODE (loss)", "end": "END"}


def _labelled(label: str, text: str) -> tuple:
    """A context snippet's label says where it comes from."""
    if label.startswith("CONTEXT") and label != "CONTEXT import":
        origin = "changed in this commit" if text.startswith(SAME_COMMIT_NOTE) else "parent tree"
        return f"{label} ({origin})", text
    return label, text


def _fields(text: str, layout: dict) -> list:
    """(label, text) pieces of a row's text, cut at the markers its layout names (the
    manifest's: special tokens or plain text, they read the same once decoded)."""
    labels = {}
    for role, marker in layout.items():
        if "text" in marker:
            labels[marker["text"]] = ROLE_LABELS.get(role) or f"CONTEXT {role[4:]}"
    pattern = "(" + "|".join(re.escape(m) for m in sorted(labels, key=len, reverse=True)) + ")"
    parts = re.split(pattern, text)
    return [_labelled(labels[marker], body) for marker, body in zip(parts[1::2], parts[2::2])]


def _row_of_split(dataset: Path, split: str, row: int) -> tuple:
    """(the tensors of the part holding the split's row, the row within it, rows in all)."""
    parts = load_parts(dataset, split)
    count = sum(part["input_ids"].shape[0] for part in parts)
    if not 0 <= row < count:
        raise SystemExit(f"the {split} split has {count} rows; pick a row from 0 to {count - 1}.")
    for part in parts:
        if row < part["input_ids"].shape[0]:
            return part, row, count
        row -= part["input_ids"].shape[0]
    raise AssertionError("row counted but not found")


def describe_row(dataset: Path, split: str, row: int) -> str:
    tensors, within, count = _row_of_split(dataset, split, row)
    tokenizer = Tokenizer.from_file(str(dataset / "tokenizer.json"))
    layout = json.loads((dataset / "manifest.json").read_text())["tokenizer"]["layout"]
    length = int(tensors["attention_mask"][within].sum())
    ids = tensors["input_ids"][within, :length].tolist()
    labels = tensors["labels"][within, :length].tolist()
    when = datetime.fromtimestamp(int(tensors["commit_time"][within]), timezone.utc).isoformat()
    lines = [f"{split} row {row} of {count}: {length} tokens, "
             f"{sum(t != IGNORE_INDEX for t in labels)} with loss",
             f"{tensors['repository'][within]}  commit {tensors['commit_sha'][within]}  {when}"]
    if "path" in tensors:
        lines += [f"  {path}  {item}" for path, item in zip(tensors["path"][within],
                                                            tensors["item"][within])]
    for label, text in _fields(tokenizer.decode(ids, skip_special_tokens=False), layout):
        lines += [f"── {label} " + "─" * max(0, 60 - len(label)), text]
    return "\n".join(lines)


def row_json(dataset: Path, split: str, row: int) -> str:
    """Line `row` of the split's jsonl parts: the row's in commit mode, the example's in
    sequential mode (where a row is a window of several)."""
    count = 0
    for count, line in enumerate(jsonl_lines(dataset, split), start=1):
        if count == row + 1:
            return line.rstrip("\n")
    raise SystemExit(f"the {split} split has {count} jsonl lines; pick a row from 0 to "
                     f"{count - 1}.")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m pipeline.show",
                                     description="Print one row of a split as labelled text.")
    parser.add_argument("split", nargs="?", default="train", choices=("train", "val", "test"))
    parser.add_argument("row", nargs="?", type=int, default=0)
    parser.add_argument("--dataset", default="dataset", help="the dataset directory")
    parser.add_argument("--json", action="store_true",
                        help="print the row's fields as JSON (its line of the split's jsonl)")
    options = parser.parse_args(argv)
    dataset = Path(options.dataset)
    paths = part_paths(dataset, options.split)
    if not paths or not all(path.is_file() for path in paths):
        sys.exit(f"{dataset} holds no complete {options.split} split; run `doit` first, or "
                 "give --dataset DIR.")
    if options.json:
        print(row_json(dataset, options.split, options.row))
    else:
        print(describe_row(dataset, options.split, options.row))


if __name__ == "__main__":
    main()
