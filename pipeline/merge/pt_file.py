"""A dict of numpy arrays, strings, ints and lists in, a .pt file that torch.load reads out,
written without importing torch.

Importing torch takes a process one to two seconds: longer than a pull takes to write its
parts, and the last serial step of a first merge. The format is torch.save's (the zip
serialization, format version 3), for the values a dataset part holds:

- a zip archive, stored (not compressed), its records under one directory (`archive/`);
- `data.pkl`: a protocol-2 pickle of the dict, in which each array is a tensor: a call of
  torch._utils._rebuild_tensor_v2 on a storage named by a persistent id
  ('storage', torch.<Type>Storage, key, 'cpu', element count);
- `data/<key>`: each storage's bytes (little-endian, C order), aligned to 64 bytes as
  torch.save aligns them, so that torch.load(mmap=True) maps them in place;
- `version`, `byteorder`, `.format_version`, `.storage_alignment`, `.data/serialization_id`.

torch.load(weights_only=True) reads it: the pickle uses only opcodes and globals it allows.
The tests load every kind of value written here with torch and compare it with the arrays.
"""

from __future__ import annotations

import struct
import zlib

import numpy as np

from pipeline.errors import PipelineError

# numpy dtype -> torch's storage type, as torch.save names it.
STORAGE_TYPES = {np.dtype(np.bool_): "BoolStorage", np.dtype(np.uint8): "ByteStorage",
                 np.dtype(np.int8): "CharStorage", np.dtype(np.int16): "ShortStorage",
                 np.dtype(np.int32): "IntStorage", np.dtype(np.int64): "LongStorage",
                 np.dtype(np.float32): "FloatStorage", np.dtype(np.float64): "DoubleStorage"}
_ALIGNMENT = 64
_ARCHIVE = "archive/"
# A zip without its 64-bit extension (torch.save would use it): no record, nor the whole
# archive, may reach 4 GiB. A part of 100 commits holds some 25 MB on cargo.
_ZIP32_LIMIT = 0xFFFFFFFF
_TOO_LARGE = ("a dataset part's tensors would reach 4 GiB: set a smaller commits_per_part "
              "(or max_length) in the settings.")


class _Pickler:
    """Protocol-2 pickle opcodes for the values of a part, as Python's pickler writes them
    for torch.save; arrays are set aside as storages (their bytes go in data/<key>)."""

    def __init__(self):
        self.out = bytearray(b"\x80\x02")                  # PROTO 2
        self.memo: dict = {}
        self.storages: list = []

    def _put(self, key) -> None:
        index = self.memo[key] = len(self.memo)
        self.out += b"q" + bytes([index]) if index < 256 else b"r" + struct.pack("<I", index)

    def _got(self, key) -> bool:
        """Refer back to a value written before (BINGET), if it was."""
        index = self.memo.get(key)
        if index is None:
            return False
        self.out += b"h" + bytes([index]) if index < 256 else b"j" + struct.pack("<I", index)
        return True

    def _global(self, module: str, name: str) -> None:
        if not self._got(("global", module, name)):
            self.out += b"c" + f"{module}\n{name}\n".encode()
            self._put(("global", module, name))

    def value(self, value) -> None:
        if isinstance(value, str):
            if not self._got(("str", value)):
                data = value.encode("utf-8", "surrogatepass")
                self.out += b"X" + struct.pack("<I", len(data)) + data
                self._put(("str", value))
        elif isinstance(value, bool):
            self.out += b"\x88" if value else b"\x89"
        elif isinstance(value, int):
            self._integer(value)
        elif isinstance(value, np.ndarray):
            self._tensor(value)
        elif isinstance(value, tuple):
            self._tuple(value)
        elif isinstance(value, list):
            self.out += b"]"                                  # EMPTY_LIST
            if value:
                self.out += b"("                              # MARK
                for item in value:
                    self.value(item)
                self.out += b"e"                              # APPENDS
        elif isinstance(value, dict):
            self.out += b"}"                                  # EMPTY_DICT
            if value:
                self.out += b"("
                for key, item in value.items():
                    self.value(key)
                    self.value(item)
                self.out += b"u"                              # SETITEMS
        else:
            raise TypeError(f"a .pt part holds no {type(value).__name__}")

    def _integer(self, value: int) -> None:
        if 0 <= value < 1 << 8:
            self.out += b"K" + bytes([value])
        elif 0 <= value < 1 << 16:
            self.out += b"M" + struct.pack("<H", value)
        elif -(1 << 31) <= value < 1 << 31:
            self.out += b"J" + struct.pack("<i", value)
        else:                                                 # LONG1, as pickle encodes it
            data = value.to_bytes((value.bit_length() + 8) // 8, "little", signed=True)
            self.out += b"\x8a" + bytes([len(data)]) + data

    def _tuple(self, items: tuple) -> None:
        if not items:
            self.out += b")"
            return
        if len(items) > 3:
            self.out += b"("
        for item in items:
            self.value(item)
        self.out += {1: b"\x85", 2: b"\x86", 3: b"\x87"}.get(len(items), b"t")

    def _tensor(self, array: np.ndarray) -> None:
        storage_type = STORAGE_TYPES.get(array.dtype)
        if storage_type is None:
            raise TypeError(f"a .pt part holds no {array.dtype} array")
        # C order, little-endian (np.ascontiguousarray would make a 0-d array 1-d).
        array = np.asarray(array, dtype=array.dtype.newbyteorder("<"), order="C")
        key = str(len(self.storages))
        self.storages.append((key, array))
        strides = tuple(int(np.prod(array.shape[i + 1:], dtype=np.int64))
                        for i in range(array.ndim))
        self._global("torch._utils", "_rebuild_tensor_v2")
        self.out += b"("                                      # its arguments
        self.out += b"("                                      # the storage's persistent id
        self.value("storage")
        self._global("torch", storage_type)
        self.value(key)
        self.value("cpu")
        self.value(int(array.size))
        self.out += b"tQ"                                     # TUPLE, BINPERSID
        self.value(0)                                         # storage offset
        self._tuple(tuple(int(n) for n in array.shape))
        self._tuple(strides)
        self.value(False)                                     # requires_grad
        self._global("collections", "OrderedDict")            # backward hooks: none
        self.out += b")R"                                     # EMPTY_TUPLE, REDUCE
        self.out += b"tR"                                     # TUPLE, REDUCE


class _ZipWriter:
    """Stored records, each one's data aligned to _ALIGNMENT, written in order to a file
    object that need not seek."""

    def __init__(self, writer):
        self.writer, self.offset, self.entries = writer, 0, []

    def add(self, name: str, data) -> None:
        name_bytes = (_ARCHIVE + name).encode()
        data = memoryview(data).cast("B")
        size, crc = len(data), zlib.crc32(data)
        # Padding in an extra field (id 'FB', as torch's writer uses) puts the data on a
        # multiple of _ALIGNMENT.
        unpadded = self.offset + 30 + len(name_bytes) + 4
        extra = b"FB" + struct.pack("<H", -unpadded % _ALIGNMENT) + bytes(-unpadded % _ALIGNMENT)
        if self.offset + 30 + len(name_bytes) + len(extra) + size > _ZIP32_LIMIT:
            raise PipelineError(_TOO_LARGE)
        self.writer.write(struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, 0, 0, 0x21, crc,
                                      size, size, len(name_bytes), len(extra)))
        self.writer.write(name_bytes)
        self.writer.write(extra)
        self.writer.write(data)
        self.entries.append((name_bytes, crc, size, self.offset))
        self.offset += 30 + len(name_bytes) + len(extra) + size

    def close(self) -> None:
        directory = bytearray()
        for name_bytes, crc, size, offset in self.entries:
            directory += struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 0, 0, 0, 0x21,
                                     crc, size, size, len(name_bytes), 0, 0, 0, 0, 0, offset)
            directory += name_bytes
        if self.offset + len(directory) > _ZIP32_LIMIT:
            raise PipelineError(_TOO_LARGE)
        self.writer.write(directory)
        self.writer.write(struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(self.entries),
                                      len(self.entries), len(directory), self.offset, 0))


def write_pt(writer, value: dict) -> None:
    """Write value (a dict of numpy arrays, strings, ints, and lists, tuples and dicts of
    them) to writer as torch.save would, for torch.load(weights_only=True) to read back:
    each array as a tensor of its dtype and shape. A string given twice is written once,
    then referred back to (pickle's memo), as torch.save's pickler does for one object."""
    pickler = _Pickler()
    pickler.value(value)
    pickler.out += b"."                                       # STOP
    archive = _ZipWriter(writer)
    archive.add("data.pkl", pickler.out)
    archive.add(".format_version", b"1")
    archive.add(".storage_alignment", str(_ALIGNMENT).encode())
    archive.add("byteorder", b"little")
    for key, array in pickler.storages:
        archive.add(f"data/{key}", array.reshape(-1).view(np.uint8) if array.size else b"")
    archive.add("version", b"3\n")
    # An id of the content, so that the same value makes the same file.
    archive.add(".data/serialization_id", str(zlib.crc32(pickler.out)).encode())
    archive.close()
