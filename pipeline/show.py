"""A split row in, its text out: fields labelled, loss marked, provenance on top.

    python -m pipeline.show            row 0 of dataset/train.pt
    python -m pipeline.show val 12     row 12 of dataset/val.pt
    python -m pipeline.show test 3 --dataset other/dataset
    python -m pipeline.show val 12 --json  the same row as JSON (its line of val.jsonl)
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from datetime import datetime, timezone
from pathlib import Path

import torch
from tokenizers import Tokenizer

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


def describe_row(dataset: Path, split: str, row: int) -> str:
    tensors = torch.load(dataset / f"{split}.pt", weights_only=True, mmap=True)
    count = tensors["input_ids"].shape[0]
    if not 0 <= row < count:
        raise SystemExit(f"{split}.pt has {count} rows; pick a row from 0 to {count - 1}.")
    tokenizer = Tokenizer.from_file(str(dataset / "tokenizer.json"))
    layout = json.loads((dataset / "manifest.json").read_text())["tokenizer"]["layout"]
    length = int(tensors["attention_mask"][row].sum())
    ids = tensors["input_ids"][row, :length].tolist()
    labels = tensors["labels"][row, :length].tolist()
    when = datetime.fromtimestamp(int(tensors["commit_time"][row]), timezone.utc).isoformat()
    lines = [f"{split}.pt row {row} of {count}: {length} tokens, "
             f"{sum(t != IGNORE_INDEX for t in labels)} with loss",
             f"commit {tensors['commit_sha'][row]}  {when}"]
    if "path" in tensors:
        lines += [f"  {path}  {item}" for path, item in zip(tensors["path"][row],
                                                            tensors["item"][row])]
    for label, text in _fields(tokenizer.decode(ids, skip_special_tokens=False), layout):
        lines += [f"── {label} " + "─" * max(0, 60 - len(label)), text]
    return "\n".join(lines)


def row_json(dataset: Path, split: str, row: int) -> str:
    """Line `row` of dataset/SPLIT.jsonl: the row's in commit mode, the example's in
    sequential mode (where a row is a window of several)."""
    count = 0
    with open(dataset / f"{split}.jsonl", encoding="utf-8") as lines:
        for count, line in enumerate(lines, start=1):
            if count == row + 1:
                return line.rstrip("\n")
    raise SystemExit(f"{split}.jsonl has {count} lines; pick a row from 0 to {count - 1}.")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m pipeline.show",
                                     description="Print one row of a split as labelled text.")
    parser.add_argument("split", nargs="?", default="train", choices=("train", "val", "test"))
    parser.add_argument("row", nargs="?", type=int, default=0)
    parser.add_argument("--dataset", default="dataset", help="the dataset directory")
    parser.add_argument("--json", action="store_true",
                        help="print the row's fields as JSON (its line of SPLIT.jsonl)")
    options = parser.parse_args(argv)
    dataset = Path(options.dataset)
    if not (dataset / f"{options.split}.pt").is_file():
        sys.exit(f"{dataset / options.split}.pt does not exist; run `doit` first, or give "
                 "--dataset DIR.")
    if options.json:
        print(row_json(dataset, options.split, options.row))
    else:
        print(describe_row(dataset, options.split, options.row))


if __name__ == "__main__":
    main()
