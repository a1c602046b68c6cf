"""Token ids in, their text out, exactly as tokenizer.decode(ids, skip_special_tokens=False)
gives it; each distinct run of ids between added tokens decoded once while recently used.

A row's jsonl line holds the row's whole text and, again, each of its parts (old code,
message, new code, context snippets), so every token was decoded twice; and the same
snippets and code versions come back commit after commit. With a byte-level decoder (see
`joins_at_added_tokens`), a text is the texts of its runs between added tokens (the
layout's markers among them) joined with those tokens' own texts, and a part is such a
run: so each run is decoded once, and the whole text is joined from its runs. A run is
decoded here, from each token's bytes (see `_token_bytes`): the tokenizer's own decode
made a string per token and took a quarter of a first merge's CPU on cargo's history.
"""

from __future__ import annotations

import json
from array import array

from pipeline.tokens.text_ids import ID_SIZE, ID_TYPE, RecentlyUsed, id_count

# The texts of runs remembered, in characters: a few thousand snippets and code versions.
DECODED_CAPACITY = 4_000_000


def joins_at_added_tokens(tokenizer, added_texts: dict) -> bool:
    """Whether decoding ids equals decoding their runs between added tokens and joining
    them with those tokens' texts: true for a ByteLevel decoder (StarCoder's, StarCoder2's,
    the one the pipeline trains), which maps each token to bytes and makes them one UTF-8
    text, when every added token's bytes are whole characters (then a run's broken
    character, if any, is broken alike in the whole text). Any other decoder decodes whole
    id lists, as before."""
    if tokenizer.decoder is None:
        return False
    decoder = json.loads(tokenizer.decoder.__getstate__())
    return decoder.get("type") == "ByteLevel" and all(
        "\ufffd" not in text for text in added_texts.values())


class Decoder:
    """A tokenizer's decoding, with the texts of runs remembered (see the module)."""

    def __init__(self, tokenizer, capacity: int = DECODED_CAPACITY):
        # Here, not at the top: a no-op `doit` imports this module and never decodes.
        import numpy
        self.tokenizer = tokenizer
        self._added = {id_: tokenizer.decode([id_], skip_special_tokens=False)
                       for id_ in tokenizer.get_added_tokens_decoder()}
        self._is_added = numpy.zeros(tokenizer.get_vocab_size(with_added_tokens=True), bool)
        self._is_added[list(self._added)] = True
        self._runs = RecentlyUsed(capacity) if joins_at_added_tokens(tokenizer, self._added) \
            else None
        self._bytes = _token_bytes(tokenizer) if self._runs is not None else None

    def decode(self, id_lists: list) -> list:
        """The text of each of id_lists (int32 ids as bytes), decoding only the runs not
        remembered."""
        if self._runs is None:
            return self.tokenizer.decode_batch([_values(ids) for ids in id_lists],
                                               skip_special_tokens=False)
        split = self._split(id_lists)
        missing = self._runs.missing(part for parts in split for part in parts
                                     if isinstance(part, bytes))
        token_bytes = self._bytes.__getitem__
        # The ByteLevel decoder's own last step: String::from_utf8_lossy, which replaces
        # each maximal invalid subsequence with one U+FFFD, as Python's "replace" does.
        found = {run: b"".join(map(token_bytes, _values(run))).decode("utf-8", "replace")
                 for run in missing}
        remembered = self._runs.values
        result = ["".join(self._added[part] if isinstance(part, int)
                          else found[part] if part in found else remembered[part]
                          for part in parts)
                  for parts in split]
        self._runs.add(found)
        self._runs.trim()
        return result

    def _split(self, id_lists: list) -> list:
        """Each of id_lists as its runs between added tokens (bytes) and those tokens
        (ints), in order. The added tokens of all the lists are found in one pass."""
        import numpy
        joined = b"".join(id_lists)
        values = numpy.frombuffer(joined, dtype=ID_TYPE)
        added = numpy.flatnonzero(self._is_added[values]).tolist()
        split, next_added, start = [], 0, 0
        for ids in id_lists:
            end = start + id_count(ids)
            parts = []
            while next_added < len(added) and added[next_added] < end:
                at = added[next_added]
                if at > start:
                    parts.append(joined[start * ID_SIZE:at * ID_SIZE])
                parts.append(int(values[at]))
                start, next_added = at + 1, next_added + 1
            if start < end:
                parts.append(joined[start * ID_SIZE:end * ID_SIZE])
            split.append(parts)
            start = end
        return split


def _byte_of_character() -> dict:
    """GPT-2's byte-level alphabet, reversed: the character that stands for each byte (the
    printable ones for themselves, the others for 256 upwards, in byte order) -> the byte."""
    kept = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1),
            *range(ord("®"), ord("ÿ") + 1)]
    moved = [byte for byte in range(256) if byte not in kept]
    return {**{chr(byte): byte for byte in kept},
            **{chr(256 + number): byte for number, byte in enumerate(moved)}}


def _token_bytes(tokenizer) -> list:
    """Each token id's bytes as the ByteLevel decoder makes them of the token decode gives
    it (tokenizer.id_to_token: a vocabulary may name one id twice): the token's characters
    mapped back to bytes, or, if one of them is not in the alphabet, the token's own UTF-8.
    An id without a token has none, as decode skips it."""
    byte_of = _byte_of_character()
    table = []
    for id_ in range(tokenizer.get_vocab_size(with_added_tokens=True)):
        token = tokenizer.id_to_token(id_) or ""
        try:
            table.append(bytes(byte_of[character] for character in token))
        except KeyError:
            table.append(token.encode())
    return table


def _values(ids: bytes) -> list:
    values = array(ID_TYPE)
    values.frombytes(ids)
    return values.tolist()
