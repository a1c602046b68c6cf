"""Text -> token ids, each distinct text, and each distinct line of code, encoded once while
it is recently used.

The same context snippets, import blocks, file names and code versions come back chunk after
chunk and commit after commit (a commit's new code is a later commit's old code), so whole
texts are remembered. A changed item differs from its old version in a few lines, and
encoding its other lines again was half of the tokens stage: so, for a tokenizer whose
encoding of a text is the encodings of its lines joined (see `splits_at_line_ends`), a text
not remembered is encoded line by line, and each line not remembered is encoded once.
"""

from __future__ import annotations

import json
import re
from array import array
from collections import OrderedDict

# Token ids are stored and packed as machine int32 arrays (msgpack bytes in a shard): the
# merge then reads, joins and turns them into tensors without a Python int per token.
ID_TYPE = "i"
ID_SIZE = array(ID_TYPE).itemsize
assert ID_SIZE == 4


def id_count(ids: bytes) -> int:
    """How many token ids a stored id string (int32s as bytes) holds."""
    return len(ids) // ID_SIZE

# A text's pieces: each ends with a printable ASCII character that a newline follows, the
# last takes the rest. Why the encoding cannot change at such a cut, for a byte-level BPE
# with the GPT-2 pre-tokenizer regex (letters, digits, other non-spaces, spaces; the
# Digits pre-tokenizer only isolates digits): every alternative that matches a visible
# character stops before whitespace and does not look past it, and a whitespace run
# matched from the newline on looks only ahead. So the pre-tokens of the text are those of
# its pieces, and BPE merges never cross a pre-token.
_PIECE = re.compile(r"[\s\S]*?[!-~](?=\n)|[\s\S]+")


def splits_at_line_ends(tokenizer) -> bool:
    """Whether tokenizer's encoding of a text equals its pieces' encodings joined: true for
    a byte-level BPE (StarCoder's, StarCoder2's, the one the pipeline trains) with no
    normalizer, no prefix space and no added token that strips spaces or holds a newline.
    Any other tokenizer is given whole texts, as before."""
    if tokenizer.normalizer is not None or type(tokenizer.model).__name__ != "BPE" \
            or tokenizer.model.dropout is not None or tokenizer.pre_tokenizer is None:
        return False
    pre = json.loads(tokenizer.pre_tokenizer.__getstate__())
    steps = pre["pretokenizers"] if pre.get("type") == "Sequence" else [pre]
    for step in steps:
        if step.get("type") == "ByteLevel":
            if step.get("add_prefix_space") or not step.get("use_regex", True):
                return False
        elif step.get("type") != "Digits":
            return False
    if not any(step.get("type") == "ByteLevel" for step in steps):
        return False
    return all(not (token.lstrip or token.rstrip) and "\n" not in token.content
               for token in tokenizer.get_added_tokens_decoder().values())


class RecentlyUsed:
    """Keys -> values (texts -> id arrays here; id runs -> texts in merge.decoding), holding
    values of at most capacity in length all told, least recently used first out."""

    def __init__(self, capacity: int):
        self.capacity = capacity
        self.values: OrderedDict = OrderedDict()
        self._held = 0

    def missing(self, keys) -> list:
        """The distinct keys not remembered (those remembered become the most recent)."""
        values, missing = self.values, {}
        for key in keys:
            if key in values:
                values.move_to_end(key)
            else:
                missing[key] = None
        return list(missing)

    def add(self, found: dict) -> None:
        for key, value in found.items():
            self.values[key] = value
            self._held += len(value)

    def trim(self) -> None:
        while self._held > self.capacity and len(self.values) > 1:
            self._held -= len(self.values.popitem(last=False)[1])


class TextIds:
    """A tokenizer's encodings, remembered: texts up to `capacity` ids, lines up to
    `line_capacity` ids. A text's ids depend on the text alone (each text is encoded on
    its own), so a remembered encoding is the one a new call would give."""

    def __init__(self, tokenizer, capacity: int = 2_000_000, line_capacity: int = 1_000_000):
        self.tokenizer = tokenizer
        # The same ids without their tokens' strings and offsets, which only the texts used
        # once (a message, cut after a line's last token) need: a quarter less CPU
        # encoding ripgrep's source files (tokenizers 0.21 and later).
        self._encode_ids = getattr(tokenizer, "encode_batch_fast", tokenizer.encode_batch)
        self._texts = RecentlyUsed(capacity)
        self._pieces = RecentlyUsed(line_capacity) if splits_at_line_ends(tokenizer) else None

    def encode(self, texts: list, once: list = ()) -> tuple[list, list]:
        """(ids of each of texts, Encoding of each of once) from batched encodes of the
        texts (or lines) not remembered and of once (texts used once, as a message: not
        remembered, encoded with their tokens)."""
        missing = self._texts.missing(texts)
        if self._pieces is None:
            encodings = self._encode_ids(missing, add_special_tokens=False)
            found = {text: array(ID_TYPE, encoding.ids)
                     for text, encoding in zip(missing, encodings)}
        else:
            pieces_of = [_PIECE.findall(text) for text in missing]
            new_pieces = self._pieces.missing(piece for pieces in pieces_of for piece in pieces)
            encodings = self._encode_ids(new_pieces, add_special_tokens=False)
            self._pieces.add({piece: array(ID_TYPE, encoding.ids)
                              for piece, encoding in zip(new_pieces, encodings)})
            found = dict(zip(missing, map(self._joined, pieces_of)))
            self._pieces.trim()
        result = [found[text] if text in found else self._texts.values[text] for text in texts]
        self._texts.add(found)
        self._texts.trim()
        once_encodings = self.tokenizer.encode_batch(list(once), add_special_tokens=False) \
            if once else []
        return result, once_encodings

    def _joined(self, pieces: list) -> array:
        ids, remembered = array(ID_TYPE), self._pieces.values
        for piece in pieces:
            ids += remembered[piece]
        return ids
