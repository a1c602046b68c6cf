"""The target model's own tokens, and the text export a person or another trainer reads."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

from conftest import run_doit
from pipeline.chunks.pieces import ELISION
from pipeline.git.sample_repo import git
from pipeline.loading import jsonl_lines, load_tensors
from pipeline.merge.tensors import IGNORE_INDEX

ROOT = Path(__file__).resolve().parents[1]
# The special tokens of StarCoder2's tokenizer that the layout can use (it has no
# <commit_*>, <reponame>, <filename>, <pad> or <ctx_*> tokens).
STARCODER2_SPECIALS = ["<|endoftext|>", "<repo_name>", "<file_sep>", "<pr_base_code>",
                       "<pr_comment>", "<pr_diff>", "<EMAIL>"]


def starcoder2_like_tokenizer(path: Path, corpus: list) -> Path:
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.train_from_iterator(corpus, trainers.BpeTrainer(
        vocab_size=800, special_tokens=STARCODER2_SPECIALS, show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    tokenizer.save(str(path))
    return path


def rust_corpus(repo: Path) -> list:
    files = git(repo, "ls-files", "*.rs").split()
    return [(repo / name).read_text() for name in files]


def test_a_starcoder2_tokenizer_gets_no_new_token_and_rows_decode_to_the_export(
        workdir, sample_repo):
    path = starcoder2_like_tokenizer(workdir / "sc2.json", rust_corpus(sample_repo))
    size = Tokenizer.from_file(str(path)).get_vocab_size()
    assert run_doit(f"repo={sample_repo}", f"tokenizer={path}")[0] == 0
    manifest = json.loads((workdir / "dataset" / "manifest.json").read_text())
    layout = manifest["tokenizer"]["layout"]
    assert manifest["tokenizer"]["added_tokens"] == {}
    tokenizer = Tokenizer.from_file(str(workdir / "dataset" / "tokenizer.json"))
    assert tokenizer.get_vocab_size() == size
    assert [layout[role]["text"] for role in ("repo", "file", "before", "message", "after")] == [
        "<repo_name>", "<file_sep>", "<pr_base_code>", "<pr_comment>", "<pr_diff>"]
    assert layout["ctx_struct"] == {"text": "<ctx_struct>", "special": False,
                                    "ids": layout["ctx_struct"]["ids"]}
    end = tokenizer.token_to_id("<|endoftext|>")
    assert layout["pad"]["id"] == end

    for split in ("train", "val", "test"):
        tensors = load_tensors(workdir / "dataset", split)
        lines = [line.rstrip("\n") for line in jsonl_lines(workdir / "dataset", split)]
        assert len(lines) == tensors["input_ids"].shape[0]
        for row, line in enumerate(lines):
            record = json.loads(line)
            length = int(tensors["attention_mask"][row].sum())
            ids = tensors["input_ids"][row, :length].tolist()
            assert tokenizer.decode(ids, skip_special_tokens=False) == record["text"]
            assert record["commit"] == tensors["commit_sha"][row]
            assert [s["path"] for s in record["segments"]] == tensors["path"][row]
            # Every segment's end carries loss: the next <file_sep>, or <|endoftext|>.
            labels = tensors["labels"][row, :length].tolist()
            file_sep = tokenizer.token_to_id("<file_sep>")
            stops = [i for i, token in enumerate(ids) if token == file_sep][1:] + [length - 1]
            assert all(labels[i] == ids[i] for i in stops)
            assert labels[0] == IGNORE_INDEX


def test_the_export_holds_each_field_and_new_code_is_verbatim(workdir, sample_repo):
    assert run_doit(f"repo={sample_repo}")[0] == 0
    checked = verbatim = 0
    for split in ("train", "val", "test"):
        for line in jsonl_lines(workdir / "dataset", split):
            record = json.loads(line)
            assert record["text"].count(record["message"]) >= 1
            for segment in record["segments"]:
                assert set(segment) == {"path", "item", "kind", "change", "old_code",
                                        "message", "new_code", "context"}
                for snippet in segment["context"]:
                    assert set(snippet) == {"kind", "path", "name", "origin", "text"}
                    assert snippet["text"] in record["text"]
                assert segment["new_code"] in record["text"]
                source = git(sample_repo, "show", f"{record['commit']}:{segment['path']}")
                parts = [part for part in segment["new_code"].split(f"\n{ELISION}\n")]
                checked += 1
                verbatim += all(part.strip(" \n").removesuffix(" {") in source
                                for part in parts)
    assert checked > 20 and verbatim / checked >= 0.99, (verbatim, checked)

    shown = subprocess.run([sys.executable, "-m", "pipeline.show", "val", "0", "--json",
                            "--dataset", str(workdir / "dataset")], cwd=ROOT,
                           capture_output=True, text=True, check=True).stdout
    first = next(jsonl_lines(workdir / "dataset", "val")).rstrip("\n")
    assert json.loads(shown) == json.loads(first)
