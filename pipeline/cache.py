"""Content-addressed store: canonical keys in, verified msgpack records out.

A record file is MAGIC + xxh3-128 of the payload + msgpack payload. msgpack decodes most
damaged bytes without complaint, so the checksum, not the decoder, decides whether a file
is intact; a file that fails it is treated as missing (and rebuilt by its task).
"""

from __future__ import annotations

import fcntl
import os
import sys
import tempfile
from pathlib import Path

import msgpack

from pipeline.errors import PipelineError
import xxhash

MAGIC = b"RCP1"
_DIGEST_SIZE = 16
# mkstemp creates files readable by the owner only; outputs should follow the umask instead.
_UMASK = os.umask(0)
os.umask(_UMASK)


def digest(data: bytes) -> str:
    return xxhash.xxh3_128_hexdigest(data)


def content_key(value) -> str:
    """Hash of a canonical serialisation (msgpack of plain values; dicts must be pre-sorted)."""
    return digest(msgpack.packb(value, use_bin_type=True))


def record_path(root: Path, stage: str, key: str) -> Path:
    return Path(root) / stage / key[:2] / f"{key}.msgpack"


def write_atomic(path: Path, data: bytes) -> None:
    """Write to a temporary file in the same directory, then rename: readers never see half."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        os.chmod(temporary, 0o666 & ~_UMASK)
        os.replace(temporary, path)
    except BaseException:
        try:
            os.unlink(temporary)
        except FileNotFoundError:
            pass
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
    return msgpack.unpackb(payload, raw=False, strict_map_key=False)


def is_valid_record(path: Path) -> bool:
    return read_record(path) is not None


_lock_file = None


def acquire_run_lock(root: Path) -> None:
    """One build at a time per cache: a second `doit` on the same cache stops with a message
    instead of racing the first. Released by release_run_lock() or when the process ends."""
    global _lock_file
    if _lock_file is not None:
        return
    Path(root).mkdir(parents=True, exist_ok=True)
    handle = open(Path(root) / ".lock", "a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "another process"
        handle.close()
        raise PipelineError(
            f"another doit is building with cache {root} ({holder}). Wait for it to finish "
            "and run `doit` again, or give this run its own cache_dir=.") from None
    handle.seek(0)
    handle.truncate()
    handle.write(f"pid {os.getpid()}")
    handle.flush()
    _lock_file = handle


def release_run_lock() -> None:
    global _lock_file
    if _lock_file is not None:
        fcntl.flock(_lock_file, fcntl.LOCK_UN)
        _lock_file.close()
        _lock_file = None
