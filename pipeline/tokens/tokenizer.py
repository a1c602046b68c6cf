"""Settings in, the run's tokenizer out (trained or loaded, with the special tokens added).

The trained tokenizer must not move as history grows, or incremental builds could not equal
clean ones: it is trained on the Rust files of one pinned commit's tree. The pin is
`tokenizer_commit` when set, otherwise the ref's commit at the first build, remembered in the
cache (and recorded in the manifest, so a clean build can reproduce it).
"""

from __future__ import annotations

from pathlib import Path

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

from pipeline import store
from pipeline.config import Settings
from pipeline.errors import PipelineError
from pipeline.git.history import list_tree, resolve_ref
from pipeline.rust.files import skip_reason
from pipeline.text import decode

# Bump when training changes (corpus choice, trainer options): part of the trained key.
TRAINER_VERSION = 3
# Longer lines (embedded data, fixtures) stay out of training: they teach no code idiom,
# and BPE training time grows with the square of a word's length.
MAX_TRAINING_LINE = 1000
END_OF_TEXT = "<|endoftext|>"
PAD = "<pad>"
CONTEXT_KINDS = ("import", "struct", "enum", "trait", "impl", "fn", "macro", "const")
SPECIAL_TOKENS = [END_OF_TEXT, PAD, "<reponame>", "<filename>", "<commit_before>",
                  "<commit_msg>", "<commit_after>"] + [f"<ctx_{kind}>" for kind in CONTEXT_KINDS]


def context_marker(kind: str) -> str:
    return f"<ctx_{kind}>" if kind in CONTEXT_KINDS else "<ctx_fn>"


def _pin_path(settings: Settings) -> Path:
    key = store.content_key(["pin", settings.repository])
    return settings.cache / "tokenizer" / f"pin-{key}.msgpack"


def pinned_commit(settings: Settings, repo, head: str) -> str:
    """The commit whose tree trains the tokenizer: the setting, else the remembered pin, else
    head, the commit the run's list was made from (not the ref as it is now: a commit that
    lands while the build runs must not change what this build trains on)."""
    if settings.tokenizer_commit:
        return resolve_ref(repo, settings.tokenizer_commit)
    pin = store.read_record(_pin_path(settings))
    if pin is None:
        pin = {"commit": head}
        store.write_record(_pin_path(settings), pin)
    return pin["commit"]


def forget_pin(settings: Settings) -> None:
    """Make the next build train a new tokenizer on the ref's commit as of then."""
    _pin_path(settings).unlink(missing_ok=True)


def _rust_files_at(settings: Settings, repo, reader, commit: str):
    """The text of every Rust file in commit's tree that a build would read, in path order."""
    for _, blob in sorted(list_tree(repo, commit, (b".rs",)).items()):
        data = reader.read(blob)
        if data is not None and skip_reason(data, settings.max_file_bytes) is None:
            text = decode(data)
            yield "".join(line for line in text.splitlines(keepends=True)
                          if len(line) <= MAX_TRAINING_LINE)


def train_tokenizer(texts, vocab_size: int) -> Tokenizer:
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tokenizer.train_from_iterator(texts, trainer)
    return tokenizer


def add_missing_special_tokens(tokenizer: Tokenizer) -> list[str]:
    """Add the special tokens the tokenizer lacks; returns those added."""
    missing = [token for token in SPECIAL_TOKENS if tokenizer.token_to_id(token) is None]
    if missing:
        tokenizer.add_special_tokens(missing)
    return missing


def _given_path(settings: Settings) -> Path:
    path = Path(settings.tokenizer).expanduser()
    if not path.is_file():
        raise PipelineError(
            f"tokenizer={settings.tokenizer} is not a file. Give the path of a Hugging Face "
            "tokenizer.json, or leave tokenizer unset to train one on the repository.")
    return path


def _load_given(path: Path) -> Tokenizer:
    try:
        return Tokenizer.from_file(str(path))
    except Exception as error:  # tokenizers raises a bare Exception for unreadable files
        raise PipelineError(
            f"tokenizer={path} could not be loaded as a Hugging Face tokenizer.json ({error}). "
            "Give the path of a tokenizer.json file, or leave tokenizer unset.") from None


def _tokenizer_key(settings: Settings, repo, head: str) -> str:
    if settings.tokenizer:
        source = store.digest(_given_path(settings).read_bytes())
        return store.content_key(["file", source, SPECIAL_TOKENS])
    return store.content_key(["trained", pinned_commit(settings, repo, head), settings.vocab_size,
                              settings.max_file_bytes, TRAINER_VERSION, SPECIAL_TOKENS])


def _build(settings: Settings, repo, reader, head: str) -> tuple[Tokenizer, dict]:
    """The tokenizer, and where it came from and which special tokens were added to it."""
    if settings.tokenizer:
        path = _given_path(settings)
        tokenizer = _load_given(path)
        added = add_missing_special_tokens(tokenizer)
        return tokenizer, {"source": f"file:{path}", "added_tokens": added,
                           "trained_on_commit": None}
    commit = pinned_commit(settings, repo, head)
    tokenizer = train_tokenizer(_rust_files_at(settings, repo, reader, commit),
                                settings.vocab_size)
    return tokenizer, {"source": f"trained:{commit}", "added_tokens": [],
                       "trained_on_commit": commit}


def prepare_tokenizer(settings: Settings, repo, reader, head: str) -> dict:
    """Make sure the run's tokenizer is in the cache; point the run at it and return its info.
    head is the commit the run's commit list starts from."""
    key = _tokenizer_key(settings, repo, head)
    info_path = settings.cache / "tokenizer" / f"{key}.msgpack"
    info = store.read_record(info_path)
    if info is None or not Path(info["path"]).is_file():
        tokenizer, origin = _build(settings, repo, reader, head)
        text = tokenizer.to_str().encode()
        json_path = settings.cache / "tokenizer" / f"{key}.json"
        store.write_atomic(json_path, text)
        info = {"path": str(json_path), "hash": store.digest(text), **origin}
        store.write_record(info_path, info)
    store.write_record(store.pointer_path(settings.cache, "tokenizer"), info)
    return info


def current_tokenizer_info(settings: Settings) -> dict:
    info = store.read_record(store.pointer_path(settings.cache, "tokenizer"))
    if info is None:
        raise PipelineError("the tokenizer is missing from the cache; run `doit` to build it.")
    return info


def load_tokenizer(path: str) -> Tokenizer:
    return Tokenizer.from_file(path)


def special_ids(tokenizer: Tokenizer) -> dict:
    return {token: tokenizer.token_to_id(token) for token in SPECIAL_TOKENS}
