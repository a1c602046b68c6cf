"""Packed examples in, the tensors of one split out: padded rows or full windows."""

from __future__ import annotations

IGNORE_INDEX = -100


def _labels(example: dict) -> list:
    labels = [IGNORE_INDEX] * len(example["input_ids"])
    for start, end in example["loss_spans"]:
        labels[start:end] = example["input_ids"][start:end]
    return labels


def commit_tensors(rows: list, max_length: int, pad_id: int) -> dict:
    """Commit mode: one padded row per example."""
    import torch  # here, not at the top: importing torch costs a no-op `doit` a second

    count = len(rows)
    input_ids = torch.full((count, max_length), pad_id, dtype=torch.int32)
    labels = torch.full((count, max_length), IGNORE_INDEX, dtype=torch.int32)
    attention = torch.zeros((count, max_length), dtype=torch.int8)
    for row, (example, _) in enumerate(rows):
        length = len(example["input_ids"])
        input_ids[row, :length] = torch.tensor(example["input_ids"], dtype=torch.int32)
        labels[row, :length] = torch.tensor(_labels(example), dtype=torch.int32)
        attention[row, :length] = 1
    return {"input_ids": input_ids, "attention_mask": attention, "labels": labels,
            "commit_time": torch.tensor([shard["committer_time"] for _, shard in rows],
                                        dtype=torch.int64),
            "commit_sha": [shard["sha"] for _, shard in rows],
            "path": [example["paths"] for example, _ in rows],
            "item": [example["items"] for example, _ in rows]}


def sequential_tensors(rows: list, max_length: int, pad_id: int) -> dict:
    """Sequential mode: examples back to back in full windows; segment_ids number the
    original examples within a window (-1 on the padding of the last window) so a trainer
    can keep attention inside each one."""
    import torch

    stream, label_stream, segment_stream, starts = [], [], [], []
    for number, (example, shard) in enumerate(rows):
        starts.append((len(stream), shard))
        stream += example["input_ids"]
        label_stream += _labels(example)
        segment_stream += [number] * len(example["input_ids"])
    windows = max(-(-len(stream) // max_length), 0)
    size = windows * max_length
    pad = size - len(stream)
    input_ids = torch.tensor(stream + [pad_id] * pad, dtype=torch.int32).view(windows, max_length)
    labels = torch.tensor(label_stream + [IGNORE_INDEX] * pad,
                          dtype=torch.int32).view(windows, max_length)
    segments = torch.tensor(segment_stream + [-1] * pad, dtype=torch.int32).view(
        windows, max_length)
    # Renumber segments from 0 in each window, keeping -1 for padding.
    first = segments[:, :1].clamp(min=0)
    segments = torch.where(segments >= 0, segments - first, segments)
    window_commits = [[] for _ in range(windows)]
    for offset, shard in starts:
        window_commits[offset // max_length].append(shard["sha"])
    return {"input_ids": input_ids, "attention_mask": (segments >= 0).to(torch.int8),
            "labels": labels, "segment_ids": segments,
            "commit_time": torch.tensor([rows[segment_stream[w * max_length]][1]["committer_time"]
                                         for w in range(windows)], dtype=torch.int64),
            "commit_sha": window_commits}

