"""A run of consecutive commits' rows in, one part of a split out: NAME.pt and NAME.jsonl,
hashed while they are written.

A split is written as parts of commits_per_part consecutive commits (train-00000,
train-00001, …), so a pull that adds commits rewrites the parts whose commits changed
(the last train part, val and test), not the whole history's outputs. A part's files are a
pure function of its key (its commits' rows keys and the tensor settings); the part's
record in the cache, under that key, holds the files' hashes and the measures stats.json
sums, so a part the last complete merge wrote with the same key is neither read nor
written again.
"""

from __future__ import annotations

import contextlib
import hashlib
from pathlib import Path

from pipeline import store
from pipeline.config import Settings
from pipeline.merge.stats import combined_measures

# Bump when the files of a part change.
PART_VERSION = 2
SUFFIXES = (".pt", ".jsonl")


def part_key(settings: Settings, rows_keys: list, pad_id: int) -> str:
    return store.content_key([rows_keys, settings.example_mode, settings.max_length, pad_id,
                              PART_VERSION])


def part_name(split: str, number: int) -> str:
    return f"{split}-{number:05d}"


class _HashingWriter:
    """A file that hashes what is written to it."""

    def __init__(self, handle):
        self.handle = handle
        self.sha256, self.size = hashlib.sha256(), 0

    def write(self, data) -> int:
        written = self.handle.write(data)
        self.sha256.update(data)
        self.size += len(data)
        return written


def _write_file(path: Path, fill) -> dict:
    """fill(writer) writes the file's bytes: to a temporary file renamed into place; one
    that fails is removed (on a full disk, its space is what the next run needs)."""
    temporary = path.with_name(f".{path.name}.tmp")
    try:
        with open(temporary, "wb") as handle:
            writer = _HashingWriter(handle)
            try:
                fill(writer)
            except OSError as error:
                raise OSError(error.errno, error.strerror, str(path)) from None
        temporary.replace(path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return {"sha256": writer.sha256.hexdigest(), "bytes": writer.size}


def tensor_rows(records: list) -> list:
    """(row, sha, time, repository name) of each row of the part's commits' records, in
    order: what its tensors are made of."""
    return [(row, record["sha"], record["time"], record["repository"])
            for record in records for row in record["rows"]]


def write_tensors(settings: Settings, out: Path, name: str, rows: list, pad_id: int) -> dict:
    """Write the part's NAME.pt from tensor_rows; returns its hash and size. (A merge runs
    this in its PartWriter's process; the doit process writes NAME.jsonl meanwhile.)"""
    # Here, not at the top: numpy is the part writer's, not the doit process's.
    from pipeline.merge.pt_file import write_pt
    from pipeline.merge.tensors import commit_tensors, sequential_tensors

    to_tensors = sequential_tensors if settings.example_mode == "sequential" else commit_tensors
    tensors = to_tensors(rows, settings.max_length, pad_id)
    return _write_file(out / f"{name}.pt", lambda writer: write_pt(writer, tensors))


def tensors_here(settings: Settings, out: Path, name: str, rows: list, pad_id: int):
    """A tensor_writer for write_part that writes the .pt in this process (a pool's worker,
    which writes whole parts) before the .jsonl."""
    entry = write_tensors(settings, out, name, rows, pad_id)
    return lambda: entry


def _write_lines(out: Path, name: str, records: list) -> dict:
    def lines(writer):
        for record in records:
            writer.write("".join(record["lines"]).encode())
    return _write_file(out / f"{name}.jsonl", lines)


def _in_place(out: Path, name: str, record: dict | None) -> bool:
    if record is None:
        return False
    for suffix in SUFFIXES:
        path = out / f"{name}{suffix}"
        if not path.is_file() or path.stat().st_size != record["files"][suffix]["bytes"]:
            return False
    return True


def write_part(settings: Settings, out: Path, name: str, rows_keys: list, records_of,
               pad_id: int, written: dict | None, tensor_writer) -> tuple[str, dict]:
    """The part's key and record (its files' hashes and sizes, its rows' measures and
    keys). Its files are written unless they are (written: see written_part): NAME.pt by
    tensor_writer (a PartWriter's write_tensors, or tensors_here: it gives back a function
    that waits for the file's entry), NAME.jsonl here meanwhile.
    records_of() gives its commits' rows."""
    key = part_key(settings, rows_keys, pad_id)
    if written is not None:
        return key, written
    records = records_of()
    tensors_written = tensor_writer(settings, out, name, tensor_rows(records), pad_id)
    try:
        lines_entry = _write_lines(out, name, records)
    except Exception:
        # The .pt being written ends (or fails and removes its temporary file: on a full
        # disk, its space is what the next run needs) before the error is shown.
        with contextlib.suppress(Exception):
            tensors_written()
        raise
    record = {"files": {".pt": tensors_written(), ".jsonl": lines_entry},
              "measures": combined_measures([r["measures"] for r in records]),
              "rows_keys": rows_keys}
    store.write_record(store.record_path(settings.cache, "parts", key), record)
    return key, record


def written_part(settings: Settings, out: Path, name: str, rows_keys: list, pad_id: int,
                 written_key: str | None) -> dict | None:
    """The part's record if the last complete merge wrote it with this key (written_key)
    and its files are in place: it is then neither read nor written again."""
    key = part_key(settings, rows_keys, pad_id)
    if key != written_key:
        return None
    record = store.read_record(store.record_path(settings.cache, "parts", key))
    return record if _in_place(out, name, record) else None
