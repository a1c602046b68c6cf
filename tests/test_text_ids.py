"""Remembered encodings: a text encoded line by line gives exactly the tokenizer's ids."""

from __future__ import annotations

import random
from array import array

from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers

from pipeline.tokens.layout import MARKER_TOKENS
from pipeline.tokens.text_ids import TextIds, splits_at_line_ends
from pipeline.tokens.tokenizer import train_tokenizer

CORPUS = ["use std::fmt;\n\nfn main() {\n    println!(\"it's {}\", 42);\n}\n",
          "pub struct Point { x: f64, y: f64 }\r\n",
          "impl Point {\n\tpub fn norm(&self) -> f64 {\n        (self.x * 2.0).sqrt()\n    }\n}\n",
          "// café, naïve: ünïcödé lines\n    \n"]
# Pieces that meet at line ends in every way code does: spaces and tabs before and after a
# newline, CRLF, blank lines, digits, a contraction, non-ASCII letters and spaces, a
# marker token written in the code.
PIECES = ["fn", " main", "()", " {", "}", ";", "x", "42", "7", "it's", "'ll", "é", "naïve",
          "\u00a0", "\u2028", "\x85", " ", "  ", "    ", "\t", "\n", "\n", "\n", "\r\n", "\n\n",
          "\n    ", "\n\t", " \n", "<filename>", "<commit_before>", "//", "\"", "=>", "::"]


def starcoder_like_tokenizer() -> Tokenizer:
    """StarCoder's and StarCoder2's shape: digits split one by one, then byte-level BPE."""
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Digits(individual_digits=True),
         pre_tokenizers.ByteLevel(add_prefix_space=False)])
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=MARKER_TOKENS,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tokenizer.train_from_iterator(CORPUS, trainer)
    return tokenizer


def random_texts(count: int, seed: int) -> list:
    rng = random.Random(seed)
    return ["".join(rng.choice(PIECES) for _ in range(rng.randrange(0, 60)))
            for _ in range(count)]


def encoded(tokenizer, text: str) -> array:
    return array("i", tokenizer.encode(text, add_special_tokens=False).ids)


def test_line_by_line_ids_are_the_tokenizers_own_for_any_text():
    for tokenizer in (train_tokenizer(CORPUS, 400), starcoder_like_tokenizer()):
        assert splits_at_line_ends(tokenizer)
        texts = random_texts(400, seed=1)
        # Texts that share most of their lines, as an item's old and new code do; small
        # capacities so that remembered lines and texts are also forgotten on the way.
        edited = [text.replace("42", "43", 1) for text in texts]
        text_ids = TextIds(tokenizer, capacity=200, line_capacity=100)
        for batch in range(0, len(texts), 7):
            asked = texts[batch:batch + 7] + edited[batch:batch + 7] + texts[batch:batch + 2]
            ids, _ = text_ids.encode(asked)
            assert ids == [encoded(tokenizer, text) for text in asked]


def test_a_tokenizer_whose_lines_interact_is_given_whole_texts():
    """A prefix space, a normalizer or an unknown pre-tokenizer make a line's encoding
    depend on where it stands: such a tokenizer is never fed lines."""
    prefixed = train_tokenizer(CORPUS, 400)
    prefixed.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=True)
    lowered = train_tokenizer(CORPUS, 400)
    lowered.normalizer = normalizers.Lowercase()
    spaced = train_tokenizer(CORPUS, 400)
    spaced.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    text = "fn main() {\n    x\n}"
    joined = array("i")
    for line in ("fn main() {", "\n    x", "\n}"):
        joined += encoded(prefixed, line)
    assert joined != encoded(prefixed, text)   # what feeding it lines would get wrong
    for tokenizer in (prefixed, lowered, spaced):
        assert not splits_at_line_ends(tokenizer)
        texts = random_texts(50, seed=2)
        assert TextIds(tokenizer).encode(texts)[0] == [encoded(tokenizer, t) for t in texts]


def test_a_message_comes_back_as_its_own_encoding_from_the_same_call():
    tokenizer = train_tokenizer(CORPUS, 400)
    text_ids = TextIds(tokenizer)
    ids, (message,) = text_ids.encode(["fn main() {\n}"], ["Fix it\n\nbody"])
    assert message.ids == tokenizer.encode("Fix it\n\nbody", add_special_tokens=False).ids
    assert ids == [encoded(tokenizer, "fn main() {\n}")]
    assert text_ids.encode(["Fix it\n\nbody"])[0] == [encoded(tokenizer, "Fix it\n\nbody")]
