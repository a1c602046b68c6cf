"""Bytes and texts in, text out: decoding that never fails, cutting at a line boundary,
the words of code."""

from __future__ import annotations

import re

_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def decode(data: bytes) -> str:
    """Text of file bytes, paths or messages: invalid UTF-8 becomes U+FFFD, never an error
    (such files are counted as flagged where they are read)."""
    return data.decode("utf-8", errors="replace")


def cut_at_line(text: str, limit: int) -> tuple[str, bool]:
    """Text cut at a line boundary to at most limit characters (at limit when the first
    line is longer); whether it was cut."""
    if len(text) <= limit:
        return text, False
    cut = text.rfind("\n", 0, limit)
    return text[:cut if cut > 0 else limit], True


def words(text: str) -> set:
    """The identifier-like words of a text (what names code may be using)."""
    return set(_WORD.findall(text))
