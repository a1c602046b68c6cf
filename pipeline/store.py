"""Values in, content-addressed files out: canonical keys, verified msgpack records.

A record file is MAGIC + xxh3-128 of the payload + msgpack payload. msgpack decodes most
damaged bytes without complaint, so the checksum, not the decoder, decides whether a file
is intact; a file that fails it is treated as missing (and rebuilt by its task).
"""

from __future__ import annotations

import contextlib
import gc
import itertools
import os
import sys
from pathlib import Path

import msgpack
import xxhash

MAGIC = b"RCP1"
_DIGEST_SIZE = 16
_WRITES = itertools.count()    # temporary file names unique within this process


def digest(data: bytes) -> str:
    return xxhash.xxh3_128_hexdigest(data)


def content_key(value) -> str:
    """Hash of a canonical serialisation (msgpack of plain values; dicts must be pre-sorted)."""
    return digest(msgpack.packb(value, use_bin_type=True))


def record_path(root: Path, stage: str, key: str) -> Path:
    # One Path from a string: joining with / three times costs a no-op `doit` on a
    # 20,000-commit history a second.
    return Path(record_file(root, stage, key))


def record_file(root: Path, stage: str, key: str) -> str:
    """record_path as a string: doit's targets of a 20,000-commit history are 46,000 of
    them, and a Path costs several times a string."""
    return f"{root}/{stage}/{key[:2]}/{key}.msgpack"


def write_atomic(path: Path, data: bytes) -> None:
    """Write to a temporary file in the same directory, then rename: readers never see half.

    The temporary name is this process's own (pid and a counter), created with O_EXCL and
    mode 0o666 so the umask applies as for any file: no mkstemp, no chmod, and the
    directory is made only when it is missing; a chunks run writes thousands of records."""
    path = Path(path)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{next(_WRITES)}.tmp")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    try:
        try:
            handle = os.open(temporary, flags, 0o666)
        except FileNotFoundError:
            path.parent.mkdir(parents=True, exist_ok=True)
            handle = os.open(temporary, flags, 0o666)
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        os.replace(temporary, path)
    except BaseException as error:
        try:
            os.unlink(temporary)
        except FileNotFoundError:
            pass
        if isinstance(error, OSError) and error.filename is None:   # a failed write names none
            raise OSError(error.errno, error.strerror, str(path)) from None
        raise


def write_record(path: Path, value) -> None:
    payload = msgpack.packb(value, use_bin_type=True)
    write_atomic(path, MAGIC + xxhash.xxh3_128_digest(payload) + payload)


def read_record(path: Path):
    """The record stored at path, or None if it is missing or fails its checksum."""
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        return None
    header = len(MAGIC) + _DIGEST_SIZE
    payload = data[header:]
    if data[:len(MAGIC)] != MAGIC or data[len(MAGIC):header] != xxhash.xxh3_128_digest(payload):
        print(f"cache: {path} is damaged or foreign; it will be rebuilt", file=sys.stderr)
        return None
    with collection_paused():
        return msgpack.unpackb(payload, raw=False, strict_map_key=False)


@contextlib.contextmanager
def collection_paused():
    """The cyclic garbage collector paused: unpacking or building many small containers
    (a 20,000-commit history's summaries) otherwise triggers it again and again, and
    takes two to three times as long (as msgpack's documentation warns)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def pointer_path(root: Path, stage: str) -> Path:
    """The record naming a stage's current entry (the run's commit list, its tokenizer)."""
    return Path(root) / stage / "current.msgpack"
