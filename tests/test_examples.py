"""Tokenizer and example format: round trips, budgets, masks, a given tokenizer.json."""

from __future__ import annotations

import dataclasses
import json
from collections import Counter

import torch
from tokenizers import Tokenizer, models, pre_tokenizers, trainers

from conftest import run_doit
from pipeline.config import Settings
from pipeline.loading import load_tensors
from pipeline.merge.packing import pack_examples
from pipeline.records import ChunkShard, to_plain
from pipeline.tokens.layout import MARKER_TOKENS, layout_of
from pipeline.tokens.segments import build_token_shard
from pipeline.tokens.tokenizer import train_tokenizer

CORPUS = ["fn main() {\n    println!(\"hello\");\n}\n", "pub struct Point { x: f64, y: f64 }\n",
          "impl Point {\n    pub fn norm(&self) -> f64 {\n        (self.x * self.x).sqrt()\n    }\n}\n"]
OLD = "pub fn norm(&self) -> f64 {\n    self.x.abs()\n}"
NEW = "pub fn norm(&self) -> f64 {\n    (self.x * self.x + self.y * self.y).sqrt()\n}"


def shard(old=OLD, new=NEW, message="Use the euclidean norm\n"):
    chunk = {"path": "src/point.rs", "old_path": "src/point.rs", "kind": "method",
             "qualname": "point::impl Point::norm", "change": "modified", "old_code": old,
             "new_code": new, "changed_lines": [[2, 2]], "truncated": False, "part": "",
             "refs": {}, "owner": "impl Point", "spare_context": [],
             "context": [{"kind": "import", "path": "src/point.rs", "name": "imports",
                          "text": "use std::fmt;"}]}
    return {"sha": "a" * 40, "message": message, "committer_time": 1, "chunks": [chunk],
            "skipped": {}, "flagged": {}, "missing_objects": [], "context_counts": {},
            "seconds": {}}


def build_examples(settings, tokenizer, commit_shard, repo_name):
    """Tokenize a chunk shard into segments and pack them, as the merge does."""
    layout = layout_of(tokenizer)
    tokens = build_token_shard(settings, tokenizer, layout, ChunkShard.from_plain(commit_shard))
    name_ids = tokenizer.encode(repo_name, add_special_tokens=False).ids
    examples = pack_examples(settings, layout, name_ids, tokens.message, tokens.segments,
                             Counter())
    return {**to_plain(tokens), "examples": to_plain(examples)}


def between(tokenizer, ids, start, end):
    i, j = ids.index(tokenizer.token_to_id(start)), ids.index(tokenizer.token_to_id(end))
    return tokenizer.decode(ids[i + 1:j], skip_special_tokens=False)


def test_training_is_deterministic_and_has_every_special_token():
    first, second = train_tokenizer(CORPUS, 400), train_tokenizer(CORPUS, 400)
    assert first.to_str() == second.to_str()
    assert all(first.token_to_id(token) is not None for token in MARKER_TOKENS)


def test_decoding_an_example_gives_back_its_fields_and_the_loss_is_on_the_new_code():
    tokenizer = train_tokenizer(CORPUS, 400)
    result = build_examples(Settings(), tokenizer, shard(), "demo")
    (example,) = result["examples"]
    ids = example["input_ids"]
    assert between(tokenizer, ids, "<reponame>", "<filename>") == "demo"
    assert between(tokenizer, ids, "<ctx_import>", "<commit_before>") == "use std::fmt;"
    assert between(tokenizer, ids, "<commit_before>", "<commit_msg>") == OLD
    assert between(tokenizer, ids, "<commit_msg>", "<commit_after>") == "Use the euclidean norm\n"
    assert between(tokenizer, ids, "<commit_after>", "<|endoftext|>") == NEW
    ((start, end),) = example["loss_spans"]
    assert end == len(ids)
    assert tokenizer.decode(ids[start:end], skip_special_tokens=False) == NEW + "<|endoftext|>"
    assert result["truncations"] == {}


def test_code_over_its_budget_is_left_out_and_counted_never_cut_on_one_side():
    tokenizer = train_tokenizer(CORPUS, 400)
    old = "".join(f"    let value_{i} = compute({i});\n" for i in range(40))
    result = build_examples(Settings(budget_old=30), tokenizer, shard(old=old), "demo")
    assert result["truncations"] == {"code_over_budget": 1}
    assert result["segments"] == [] and result["examples"] == []


def test_a_message_over_budget_is_cut_at_a_line_boundary_with_a_visible_marker():
    tokenizer = train_tokenizer(CORPUS, 400)
    message = "Use the euclidean norm\n\n" + "".join(f"Line {i} of the reason.\n"
                                                     for i in range(30))
    result = build_examples(Settings(budget_message=30), tokenizer, shard(message=message),
                            "demo")
    shown = between(tokenizer, result["examples"][0]["input_ids"], "<commit_msg>",
                    "<commit_after>")
    assert result["truncations"] == {"message": 1}
    assert shown.endswith(" …") and message.startswith(shown[:-2]) and len(shown) < len(message)
    # Cut after the last whole line that fits the budget (30 less the marker's 4 tokens),
    # which here ends before it.
    kept = shown[:-2]
    assert kept.endswith("\n") and len(tokenizer.encode(kept).ids) < 26
    next_line = message[len(kept):].split("\n", 1)[0] + "\n"
    assert len(tokenizer.encode(kept + next_line).ids) > 26


def test_a_given_tokenizer_gets_the_markers_it_lacks_when_asked_and_lists_them(
        workdir, sample_repo):
    plain = Tokenizer(models.BPE())
    plain.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    plain.train_from_iterator(CORPUS, trainers.BpeTrainer(
        vocab_size=300, special_tokens=["<|endoftext|>"], show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    path = workdir / "given-tokenizer.json"
    plain.save(str(path))
    assert plain.token_to_id("<commit_before>") is None

    assert run_doit(f"repo={sample_repo}", f"tokenizer={path}", "add_marker_tokens=true")[0] == 0
    manifest = json.loads((workdir / "dataset" / "manifest.json").read_text())
    added = manifest["tokenizer"]["added_tokens"]
    assert "<commit_before>" in added and "<|endoftext|>" not in added
    assert added["<commit_before>"] >= plain.get_vocab_size()
    train = load_tensors(workdir / "dataset", "train")
    chunks = sum(len(paths) for paths in train["path"])
    assert (train["input_ids"] == added["<commit_before>"]).sum() == chunks > 0


def test_a_commit_too_big_for_one_example_becomes_several_each_with_its_message():
    tokenizer = train_tokenizer(CORPUS, 400)
    special = {token: tokenizer.token_to_id(token) for token in MARKER_TOKENS}
    big = shard()
    chunk = big["chunks"][0]
    bodies = ["\n".join(f"    let v{i}_{j} = {j};" for j in range(12)) for i in range(6)]
    big["chunks"] = [{**chunk, "qualname": f"point::f{i}", "new_code": f"fn f{i}() {{\n{body}\n}}"}
                     for i, body in enumerate(bodies)]
    settings = Settings(max_length=400, budget_old=60, budget_new=200, budget_message=40,
                        budget_context=20)
    examples = build_examples(settings, tokenizer, big, "demo")["examples"]
    assert len(examples) > 1
    assert [item for e in examples for item in e["items"]] == [f"point::f{i}" for i in range(6)]
    for example in examples:
        ids = example["input_ids"]
        assert len(ids) <= 400 and ids[0] == special["<reponame>"]
        assert ids.count(special["<commit_msg>"]) == len(example["items"])
        assert len(example["loss_spans"]) == len(example["items"])
        assert "Use the euclidean norm" in tokenizer.decode(ids, skip_special_tokens=False)


def test_loss_on_all_labels_every_token():
    tokenizer = train_tokenizer(CORPUS, 400)
    (example,) = build_examples(Settings(loss_on_all=True), tokenizer, shard(),
                                "demo")["examples"]
    assert example["loss_spans"] == [[0, len(example["input_ids"])]]


def test_sequential_mode_packs_full_windows_and_marks_each_example(workdir, sample_repo):
    assert run_doit(f"repo={sample_repo}", "example_mode=sequential", "max_length=1024",
                    "budget_new=512", "budget_old=256")[0] == 0
    train = load_tensors(workdir / "dataset", "train")
    tokenizer = Tokenizer.from_file(str(workdir / "dataset" / "tokenizer.json"))
    ids, mask, segments = train["input_ids"], train["attention_mask"], train["segment_ids"]
    assert ids.shape[1] == 1024 and ids.shape[0] > 1
    assert mask[:-1].all()                                 # no padding but in the last window
    reponame = tokenizer.token_to_id("<reponame>")
    for row in range(ids.shape[0]):
        for position in range(1, 1024):
            starts_example = ids[row, position] == reponame
            new_segment = segments[row, position] != segments[row, position - 1]
            if segments[row, position] >= 0:
                assert bool(starts_example) == bool(new_segment)
    labelled = train["labels"] != -100
    assert torch.equal(train["labels"][labelled], ids[labelled])
    assert sorted(train["commit_time"].tolist()) == train["commit_time"].tolist()


def test_retraining_on_request_rebuilds_every_token_shard_and_no_chunk_shard(workdir, sample_repo):
    from pipeline.git.sample_repo import commit_count, extend_sample_repository
    assert run_doit(f"repo={sample_repo}")[0] == 0
    first = json.loads((workdir / "dataset" / "manifest.json").read_text())["tokenizer"]
    extend_sample_repository(sample_repo, 3)
    code, record = run_doit(f"repo={sample_repo}")
    assert code == 0 and len(record.built_shas["tokens"]) == 3
    assert run_doit(f"repo={sample_repo}", "retrain_tokenizer")[0] == 0
    code, record = run_doit(f"repo={sample_repo}")
    assert code == 0
    assert "chunks" not in record.built_shas
    assert len(record.built_shas["tokens"]) == commit_count(sample_repo)
    second = json.loads((workdir / "dataset" / "manifest.json").read_text())["tokenizer"]
    assert second["trained_on_commit"] != first["trained_on_commit"]
    assert second["hash"] != first["hash"]


def test_the_header_allowance_covers_name_path_and_markers():
    from pipeline.config import HEADER_TOKENS
    from pipeline.tokens.segments import NAME_TOKENS, PATH_TOKENS
    markers = 6       # <reponame> <filename> <commit_before> <commit_msg> <commit_after> <|endoftext|>
    assert NAME_TOKENS + PATH_TOKENS + markers <= HEADER_TOKENS


def test_to_plain_turns_records_into_dicts_and_sequences_into_lists_whatever_their_class():
    @dataclasses.dataclass(frozen=True)
    class Pair:
        left: object
        right: object

    @dataclasses.dataclass(frozen=True)
    class Row(tuple):          # a record that is also a tuple is still a record
        name: str = "default"

    value = [Pair((1, Pair("a", [b"x"])), {"k": (1, 2)}), Row("r"), True, None, 1.5]
    expected = [{"left": [1, {"left": "a", "right": [b"x"]}], "right": {"k": (1, 2)}},
                {"name": "r"}, True, None, 1.5]
    assert to_plain(value) == expected
    # A record class is read as its defaults, and not taken for the class of every class.
    assert to_plain(Row) == {"name": "default"} and to_plain(int) is int
    assert to_plain(value) == expected
