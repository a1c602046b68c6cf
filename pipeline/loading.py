"""A dataset directory in, a split's rows out: the parts' tensors joined, or a torch Dataset
over them whose items a plain DataLoader batches.

A split is written in parts (train-00000.pt, train-00001.pt, …, each with its .jsonl);
their rows, in part order, are the split's rows in temporal order.
"""

from __future__ import annotations

import bisect
import json
from pathlib import Path

import torch
from torch.utils.data import Dataset

TENSOR_KEYS = ("input_ids", "attention_mask", "labels", "segment_ids")


def part_names(dataset: str | Path, split: str) -> list:
    """The split's part names in order: the manifest's, else the files present."""
    dataset = Path(dataset)
    try:
        return json.loads((dataset / "manifest.json").read_text())["splits"][split]["parts"]
    except (OSError, ValueError, KeyError):
        return sorted(path.stem for path in dataset.glob(f"{split}-*.pt"))


def part_paths(dataset: str | Path, split: str, suffix: str = ".pt") -> list:
    return [Path(dataset) / f"{name}{suffix}" for name in part_names(dataset, split)]


def load_parts(dataset: str | Path, split: str) -> list:
    """Each part's tensors, memory-mapped, without pickled code."""
    return [torch.load(path, weights_only=True, mmap=True) for path in part_paths(dataset, split)]


def load_tensors(dataset: str | Path, split: str) -> dict:
    """The split's tensors as one dict (the parts' rows joined, in order), in memory."""
    parts = load_parts(dataset, split)
    if not parts:
        raise FileNotFoundError(f"no {split} parts in {dataset}; run `doit` first")
    joined = {}
    for key, value in parts[0].items():
        if isinstance(value, torch.Tensor):
            joined[key] = torch.cat([part[key] for part in parts])
        else:
            joined[key] = [entry for part in parts for entry in part[key]]
    return joined


def jsonl_lines(dataset: str | Path, split: str):
    """The split's jsonl lines (one per row, in tensor order), part after part."""
    for path in part_paths(dataset, split, ".jsonl"):
        with open(path, encoding="utf-8") as lines:
            yield from lines


class SplitDataset(Dataset):
    """Rows of one split as dicts of int64 tensors (what model forward passes expect),
    read from the memory-mapped parts."""

    def __init__(self, parts: list):
        self.parts = [{key: part[key] for key in TENSOR_KEYS if key in part} for part in parts]
        self.commit_sha = [sha for part in parts for sha in part["commit_sha"]]
        self.starts, total = [], 0
        for part in self.parts:
            self.starts.append(total)
            total += part["input_ids"].shape[0]
        self.length = total

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> dict:
        if not 0 <= index < self.length:
            raise IndexError(index)
        number = bisect.bisect_right(self.starts, index) - 1
        row = index - self.starts[number]
        return {key: value[row].long() for key, value in self.parts[number].items()}


def load_split(dataset: str | Path = "dataset", split: str = "train") -> SplitDataset:
    """dataset/ train (or val, test) as a Dataset over its memory-mapped parts."""
    return SplitDataset(load_parts(dataset, split))
