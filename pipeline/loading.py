"""A split file in, a torch Dataset out, whose items a plain DataLoader batches."""

from __future__ import annotations

from pathlib import Path

import torch
from torch.utils.data import Dataset

TENSOR_KEYS = ("input_ids", "attention_mask", "labels", "segment_ids")


class SplitDataset(Dataset):
    """Rows of one split as dicts of int64 tensors (what model forward passes expect)."""

    def __init__(self, tensors: dict):
        self.tensors = {key: tensors[key] for key in TENSOR_KEYS if key in tensors}
        self.commit_sha = tensors["commit_sha"]

    def __len__(self) -> int:
        return self.tensors["input_ids"].shape[0]

    def __getitem__(self, index: int) -> dict:
        return {key: value[index].long() for key, value in self.tensors.items()}


def load_split(path: str | Path) -> SplitDataset:
    """dataset/train.pt (or val, test) as a Dataset, memory-mapped, without pickled code."""
    return SplitDataset(torch.load(path, weights_only=True, mmap=True))
