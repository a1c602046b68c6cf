"""Rows in (int32 ids as bytes, loss spans), the tensors of one output file out: padded
rows or full windows. Rows become tensors by copying buffers.
"""

from __future__ import annotations

from array import array

from pipeline.tokens.segments import ID_TYPE

IGNORE_INDEX = -100


def _ids(row: dict) -> array:
    ids = array(ID_TYPE)
    ids.frombytes(row["ids"])
    return ids


def _labels(ids: array, spans: list) -> array:
    labels = array(ids.typecode, [IGNORE_INDEX]) * len(ids)
    for start, end in spans:
        labels[start:end] = ids[start:end]
    return labels


def commit_tensors(rows: list, max_length: int, pad_id: int) -> dict:
    """Commit mode: one padded row per example. rows: (row, sha, time, repository name)
    in order."""
    import torch  # here, not at the top: importing torch costs a no-op `doit` a second

    count = len(rows)
    input_ids = torch.full((count, max_length), pad_id, dtype=torch.int32)
    labels = torch.full((count, max_length), IGNORE_INDEX, dtype=torch.int32)
    attention = torch.zeros((count, max_length), dtype=torch.int8)
    for number, (row, *_) in enumerate(rows):
        ids = _ids(row)
        input_ids[number, :len(ids)] = torch.frombuffer(ids, dtype=torch.int32)
        labels[number, :len(ids)] = torch.frombuffer(_labels(ids, row["spans"]),
                                                     dtype=torch.int32)
        attention[number, :len(ids)] = 1
    return {"input_ids": input_ids, "attention_mask": attention, "labels": labels,
            "commit_time": torch.tensor([time for _, _, time, _ in rows], dtype=torch.int64),
            "commit_sha": [sha for _, sha, _, _ in rows],
            "repository": [repository for *_, repository in rows],
            "path": [row["paths"] for row, *_ in rows],
            "item": [row["items"] for row, *_ in rows]}


def sequential_tensors(rows: list, max_length: int, pad_id: int) -> dict:
    """Sequential mode: examples back to back in full windows; segment_ids number the
    original examples within a window (-1 on the padding of the last window) so a trainer
    can keep attention inside each one."""
    import torch

    stream, label_stream, segment_stream, starts = array("i"), array("i"), array("i"), []
    for number, (row, sha, time, repository) in enumerate(rows):
        ids = _ids(row)
        starts.append((len(stream), sha, repository))
        stream += ids
        label_stream += _labels(ids, row["spans"])
        segment_stream += array("i", [number]) * len(ids)
    windows = max(-(-len(stream) // max_length), 0)
    size = windows * max_length
    pad = size - len(stream)
    stream += array("i", [pad_id]) * pad
    label_stream += array("i", [IGNORE_INDEX]) * pad
    segment_stream += array("i", [-1]) * pad

    def as_windows(values: array):
        if not values:                      # frombuffer refuses an empty buffer
            return torch.zeros((0, max_length), dtype=torch.int32)
        return torch.frombuffer(values, dtype=torch.int32).view(windows, max_length)

    input_ids, labels, segments = map(as_windows, (stream, label_stream, segment_stream))
    # Renumber segments from 0 in each window, keeping -1 for padding.
    first = segments[:, :1].clamp(min=0)
    segments = torch.where(segments >= 0, segments - first, segments)
    window_commits = [[] for _ in range(windows)]
    window_repositories = [[] for _ in range(windows)]
    for offset, sha, repository in starts:
        window_commits[offset // max_length].append(sha)
        window_repositories[offset // max_length].append(repository)
    return {"input_ids": input_ids, "attention_mask": (segments >= 0).to(torch.int8),
            "labels": labels, "segment_ids": segments,
            "commit_time": torch.tensor([rows[segment_stream[w * max_length]][2]
                                         for w in range(windows)], dtype=torch.int64),
            "commit_sha": window_commits, "repository": window_repositories}
