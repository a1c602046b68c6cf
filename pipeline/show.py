"""A split row in, its text out: fields labelled, loss marked, provenance on top.

    python -m pipeline.show            row 0 of dataset/train.pt
    python -m pipeline.show val 12     row 12 of dataset/val.pt
    python -m pipeline.show test 3 --dataset other/dataset
"""

from __future__ import annotations

import argparse
import sys
from datetime import datetime, timezone
from pathlib import Path

import torch
from tokenizers import Tokenizer

from pipeline.merge.tensors import IGNORE_INDEX
from pipeline.tokens.segments import SAME_COMMIT_NOTE

# What the text after each marker is, for the labels of the printout.
FIELD_NAMES = {"<reponame>": "REPOSITORY", "<filename>": "FILE", "<commit_before>": "OLD CODE",
               "<commit_msg>": "MESSAGE", "<commit_after>": "NEW CODE (loss)"}


def _labelled(label: str, text: str) -> tuple:
    """A context snippet's label says where it comes from."""
    if label.startswith("CONTEXT") and label != "CONTEXT import":
        origin = "changed in this commit" if text.startswith(SAME_COMMIT_NOTE) else "parent tree"
        return f"{label} ({origin})", text
    return label, text


def _fields(tokenizer: Tokenizer, ids: list, labels: list) -> list:
    """(label, text) pieces of a row, cut at its special tokens."""
    pieces, label, current, lossy = [], None, [], False
    for token_id, target in zip(ids, labels):
        token = tokenizer.id_to_token(token_id)
        if token in FIELD_NAMES or (token or "").startswith("<ctx_") or token == "<|endoftext|>":
            if label is not None:
                pieces.append(_labelled(label, tokenizer.decode(current,
                                                                skip_special_tokens=False)))
            label = FIELD_NAMES.get(token) or (f"CONTEXT {token[5:-1]}" if token != "<|endoftext|>"
                                               else None)
            current = []
            lossy = target != IGNORE_INDEX
            if token == "<|endoftext|>":
                pieces.append(("END", "<|endoftext|>" + ("  (loss)" if lossy else "")))
            continue
        current.append(token_id)
    if label is not None and current:
        pieces.append(_labelled(label, tokenizer.decode(current, skip_special_tokens=False)))
    return pieces


def describe_row(dataset: Path, split: str, row: int) -> str:
    tensors = torch.load(dataset / f"{split}.pt", weights_only=True, mmap=True)
    count = tensors["input_ids"].shape[0]
    if not 0 <= row < count:
        raise SystemExit(f"{split}.pt has {count} rows; pick a row from 0 to {count - 1}.")
    tokenizer = Tokenizer.from_file(str(dataset / "tokenizer.json"))
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
    for label, text in _fields(tokenizer, ids, labels):
        lines += [f"── {label} " + "─" * max(0, 60 - len(label)), text]
    return "\n".join(lines)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m pipeline.show",
                                     description="Print one row of a split as labelled text.")
    parser.add_argument("split", nargs="?", default="train", choices=("train", "val", "test"))
    parser.add_argument("row", nargs="?", type=int, default=0)
    parser.add_argument("--dataset", default="dataset", help="the dataset directory")
    options = parser.parse_args(argv)
    dataset = Path(options.dataset)
    if not (dataset / f"{options.split}.pt").is_file():
        sys.exit(f"{dataset / options.split}.pt does not exist; run `doit` first, or give "
                 "--dataset DIR.")
    print(describe_row(dataset, options.split, options.row))


if __name__ == "__main__":
    main()
