"""The .pt files written without torch: torch.load reads back exactly what was written."""

from __future__ import annotations

import io
import random
import struct
import zipfile

import numpy as np
import torch

from pipeline.merge.pt_file import STORAGE_TYPES, write_pt

WORDS = ["src/lib.rs", "garden/planner", "日本語.rs", "🦀", "", "a" * 300, "é\u2028x"]


def random_array(rng: random.Random) -> np.ndarray:
    dtype = rng.choice(sorted(STORAGE_TYPES, key=str))
    shape = tuple(rng.choice([0, 1, 2, 3, 17, 64]) for _ in range(rng.randint(0, 3)))
    generator = np.random.default_rng(rng.randrange(1 << 30))
    if dtype == np.bool_:
        return generator.integers(0, 2, shape).astype(np.bool_)
    if dtype.kind == "f":
        return generator.normal(size=shape).astype(dtype)
    info = np.iinfo(dtype)
    array = generator.integers(info.min, info.max, shape, dtype=dtype, endpoint=True)
    return array.T if rng.random() < 0.3 else array      # a transposed view is not C order


def random_value(rng: random.Random, depth: int = 0):
    kind = rng.choice(["array", "str", "int", "list", "bool"] if depth < 3 else
                      ["array", "str", "int"])
    if kind == "array":
        return random_array(rng)
    if kind == "str":
        return rng.choice(WORDS)
    if kind == "bool":
        return rng.random() < 0.5
    if kind == "int":
        return rng.choice([0, 1, 255, 256, 65535, 65536, -1, -100, 2 ** 31 - 1, -2 ** 31,
                           2 ** 31, 1_700_000_000, 2 ** 63 - 1, -2 ** 63, 2 ** 70])
    return [random_value(rng, depth + 1) for _ in range(rng.choice([0, 1, 2, 5, 300]))]


def as_torch(value):
    """value as torch.save would be given it: arrays as tensors."""
    if isinstance(value, np.ndarray):
        return torch.from_numpy(value)
    if isinstance(value, list):
        return [as_torch(item) for item in value]
    if isinstance(value, dict):
        return {key: as_torch(item) for key, item in value.items()}
    return value


def assert_same(loaded, expected) -> None:
    """Equal values, tensors of the same dtype and shape (write_pt's are in C order)."""
    if isinstance(expected, torch.Tensor):
        assert isinstance(loaded, torch.Tensor) and loaded.dtype == expected.dtype
        assert loaded.shape == expected.shape and torch.equal(loaded, expected)
    elif isinstance(expected, (list, dict)):
        assert type(loaded) is type(expected) and len(loaded) == len(expected)
        pairs = (zip(loaded, expected) if isinstance(expected, list) else
                 ((loaded[key], item) for key, item in expected.items()))
        for got, wanted in pairs:
            assert_same(got, wanted)
    else:
        assert type(loaded) is type(expected) and loaded == expected


def test_torch_loads_what_was_written_as_torch_save_would_have_it(tmp_path):
    """Random dicts of arrays of every dtype and shape (empty ones too), strings (repeated,
    non-ASCII), ints over every pickle width and nested lists: torch.load, weights only,
    with and without mmap, gives back the values torch.save was given."""
    rng = random.Random(11)
    for number in range(60):
        value = {f"key{index}": random_value(rng) for index in range(rng.randint(1, 8))}
        path = tmp_path / f"part-{number}.pt"
        with open(path, "wb") as handle:
            write_pt(handle, value)
        expected = as_torch(value)
        for mmap in (False, True):
            loaded = torch.load(path, weights_only=True, mmap=mmap)
            assert_same(loaded, expected)
            assert all(tensor.is_contiguous() for tensor in loaded.values()
                       if isinstance(tensor, torch.Tensor))
        saved = io.BytesIO()
        torch.save(expected, saved)
        saved.seek(0)
        assert_same(torch.load(saved, weights_only=True), expected)


def test_the_archive_is_a_valid_zip_its_data_aligned_and_the_same_value_the_same_bytes():
    rng = random.Random(5)
    value = {"input_ids": random_array(rng), "names": WORDS * 3,
             "windows": [np.arange(n, dtype=np.int32) for n in (0, 3, 100)]}
    first, second = io.BytesIO(), io.BytesIO()
    write_pt(first, value)
    write_pt(second, value)
    assert first.getvalue() == second.getvalue()
    archive = zipfile.ZipFile(first)
    assert archive.testzip() is None                     # every record's CRC matches
    data = first.getvalue()
    for info in archive.infolist():
        assert info.filename.startswith("archive/")
        name_length, extra_length = struct.unpack_from("<HH", data, info.header_offset + 26)
        start = info.header_offset + 30 + name_length + extra_length
        if info.filename.startswith("archive/data/"):
            assert start % 64 == 0, info.filename       # torch.load(mmap=True) maps it
        assert data[start:start + info.file_size] == archive.read(info.filename)
