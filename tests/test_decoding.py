"""Remembered decodings: a text joined from its runs between added tokens is exactly the
tokenizer's own decode, broken characters and all."""

from __future__ import annotations

import random
from array import array

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

from pipeline.merge.decoding import Decoder, joins_at_added_tokens
from pipeline.tokens.layout import MARKER_TOKENS
from pipeline.tokens.tokenizer import train_tokenizer
from test_text_ids import CORPUS, random_texts, starcoder_like_tokenizer

# Characters of two to four bytes that the small vocabularies below keep apart, so that a
# list cut between two tokens breaks them (as a path cut to its last tokens, or a text cut
# to its budget, can).
WIDE = ["🦀", "日本語", "é", "ü"]


def id_lists(tokenizer, count: int, seed: int) -> list:
    """Rows of runs as a packed row has them: markers, then texts' ids, some cut at both
    ends; and lists repeated, as snippets and code versions come back."""
    rng = random.Random(seed)
    texts = [text + rng.choice(WIDE) + text for text in random_texts(200, seed)]
    added = sorted(tokenizer.get_added_tokens_decoder())
    lists = []
    for _ in range(count):
        if lists and rng.random() < 0.3:
            lists.append(rng.choice(lists))
            continue
        ids = []
        for _ in range(rng.randrange(0, 6)):
            if rng.random() < 0.7:
                ids.append(rng.choice(added))
            text_ids = tokenizer.encode(rng.choice(texts), add_special_tokens=False).ids
            end = rng.randrange(0, len(text_ids) + 1)
            ids += text_ids[rng.randrange(0, end + 1) if rng.random() < 0.3 else 0:end]
        lists.append(array("i", ids).tobytes())
    return lists


def decoded(tokenizer, lists: list) -> list:
    return tokenizer.decode_batch([array("i", ids).tolist() for ids in lists],
                                  skip_special_tokens=False)


def byte_level_tokenizers() -> list:
    starcoder = starcoder_like_tokenizer()
    starcoder.decoder = decoders.ByteLevel()        # as StarCoder's and StarCoder2's
    return [train_tokenizer(CORPUS, 400), starcoder]


def test_texts_joined_from_remembered_runs_are_the_tokenizers_own_decode():
    for tokenizer in byte_level_tokenizers():
        assert joins_at_added_tokens(tokenizer, {})
        lists = id_lists(tokenizer, 600, seed=3)
        expected = decoded(tokenizer, lists)
        assert any("\ufffd" in text for text in expected)      # broken characters were made
        decoder = Decoder(tokenizer, capacity=300)      # runs are also forgotten on the way
        for batch in range(0, len(lists), 9):
            assert decoder.decode(lists[batch:batch + 9]) == expected[batch:batch + 9]


def test_runs_of_any_tokens_decode_as_the_tokenizer_decodes_them():
    """A run is decoded from its tokens' bytes: random tokens of the whole vocabulary make
    every kind of invalid UTF-8 (lone continuation bytes, cut and overlong sequences), each
    replaced as the tokenizer's ByteLevel decoder replaces it."""
    rng = random.Random(11)
    for tokenizer in byte_level_tokenizers():
        added = set(tokenizer.get_added_tokens_decoder())
        model_ids = [id_ for id_ in range(tokenizer.get_vocab_size()) if id_ not in added]
        lists = [array("i", rng.choices(model_ids, k=rng.randrange(0, 40))).tobytes()
                 for _ in range(2000)]
        expected = decoded(tokenizer, lists)
        assert sum("\ufffd" in text for text in expected) > 500
        assert Decoder(tokenizer).decode(lists) == expected


def test_tokens_outside_the_byte_alphabet_and_ids_named_twice_decode_as_the_tokenizer_does():
    """A token with a character the ByteLevel decoder cannot map back to a byte is its own
    UTF-8; a vocabulary that names a piece twice still decodes each id to its own token."""
    byte_level = {chr(character): i for i, character in enumerate(range(ord("¡"), ord("¬") + 1))}
    outside = Tokenizer(models.BPE(vocab={**byte_level, "€": len(byte_level),
                                          "x€y": len(byte_level) + 1}, merges=[]))
    repeated = Tokenizer(models.Unigram([("a", -1.0), ("b", -1.0), ("a", -1.0), ("€", -1.0)]))
    rng = random.Random(5)
    for tokenizer in (outside, repeated):
        tokenizer.decoder = decoders.ByteLevel()
        assert joins_at_added_tokens(tokenizer, {})
        lists = [array("i", rng.choices(range(tokenizer.get_vocab_size()),
                                        k=rng.randrange(0, 12))).tobytes() for _ in range(500)]
        expected = decoded(tokenizer, lists)
        assert any("€" in text for text in expected)
        assert Decoder(tokenizer).decode(lists) == expected
    # The byte-level tokens alone are continuation bytes: broken characters.
    assert "\ufffd" in decoded(outside, [array("i", [0, len(byte_level)]).tobytes()])[0]


def test_another_decoder_is_given_whole_lists():
    """A decoder that looks at its neighbours (WordPiece joins tokens with spaces and cleans
    up around punctuation) would be wrong joined: it decodes whole lists, exactly."""
    tokenizer = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.decoder = decoders.WordPiece()
    tokenizer.train_from_iterator(CORPUS, trainers.WordPieceTrainer(
        vocab_size=300, special_tokens=["[UNK]", *MARKER_TOKENS]))
    assert not joins_at_added_tokens(tokenizer, {})
    lists = id_lists(tokenizer, 300, seed=4)
    expected = decoded(tokenizer, lists)
    assert Decoder(tokenizer).decode(lists) == expected
    # Joined at the markers, some would differ: the gate is needed.
    marker_ids = set(tokenizer.get_added_tokens_decoder())
    joined = []
    for ids in lists:
        values, parts, run = array("i", ids), [], []
        for value in values:
            if value in marker_ids:
                parts += [run, [value]]
                run = []
            else:
                run.append(value)
        parts.append(run)
        joined.append("".join(tokenizer.decode(part, skip_special_tokens=False)
                              for part in parts))
    assert joined != expected
