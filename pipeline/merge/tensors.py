"""Rows in (int32 ids as bytes, loss spans), the tensors of one output file out: padded
rows or full windows, as numpy arrays (pt_file writes them as torch tensors). Rows become
arrays by copying buffers.
"""

from __future__ import annotations

from array import array

import numpy as np

from pipeline.tokens.text_ids import ID_TYPE

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
    count = len(rows)
    input_ids = np.full((count, max_length), pad_id, dtype=np.int32)
    labels = np.full((count, max_length), IGNORE_INDEX, dtype=np.int32)
    attention = np.zeros((count, max_length), dtype=np.int8)
    for number, (row, *_) in enumerate(rows):
        ids = _ids(row)
        input_ids[number, :len(ids)] = np.frombuffer(ids, dtype=np.int32)
        labels[number, :len(ids)] = np.frombuffer(_labels(ids, row["spans"]), dtype=np.int32)
        attention[number, :len(ids)] = 1
    return {"input_ids": input_ids, "attention_mask": attention, "labels": labels,
            "commit_time": np.array([time for _, _, time, _ in rows], dtype=np.int64),
            "commit_sha": [sha for _, sha, _, _ in rows],
            "repository": [repository for *_, repository in rows],
            "path": [row["paths"] for row, *_ in rows],
            "item": [row["items"] for row, *_ in rows]}


def sequential_tensors(rows: list, max_length: int, pad_id: int) -> dict:
    """Sequential mode: examples back to back in full windows; segment_ids number the
    original examples within a window (-1 on the padding of the last window) so a trainer
    can keep attention inside each one."""
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
        return np.frombuffer(values, dtype=np.int32).reshape(windows, max_length)

    input_ids, labels, segments = map(as_windows, (stream, label_stream, segment_stream))
    # Renumber segments from 0 in each window, keeping -1 for padding.
    first = np.maximum(segments[:, :1], 0)
    segments = np.where(segments >= 0, segments - first, segments)
    window_commits = [[] for _ in range(windows)]
    window_repositories = [[] for _ in range(windows)]
    for offset, sha, repository in starts:
        window_commits[offset // max_length].append(sha)
        window_repositories[offset // max_length].append(repository)
    return {"input_ids": input_ids, "attention_mask": (segments >= 0).astype(np.int8),
            "labels": labels, "segment_ids": segments,
            "commit_time": np.array([rows[segment_stream[w * max_length]][2]
                                     for w in range(windows)], dtype=np.int64),
            "commit_sha": window_commits, "repository": window_repositories}
