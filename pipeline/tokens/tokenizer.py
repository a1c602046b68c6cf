"""Settings in, the run's tokenizer out (trained, or loaded from tokenizer=PATH).

The trained tokenizer must not move as history grows, or incremental builds could not equal
clean ones: it is trained on the Rust files of one pinned commit's tree (per repository,
with repos=). The pin is `tokenizer_commit` when set, otherwise the last commit of the
train period at the first build (so that no val or test commit shapes the vocabulary),
remembered in the cache and recorded in the manifest, so a clean build can reproduce it.
A given tokenizer is used as it is (pipeline.tokens.layout); add_marker_tokens=true adds
the markers it lacks.
"""

from __future__ import annotations

import itertools
from pathlib import Path

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

from pipeline import store
from pipeline.config import Settings
from pipeline.errors import PipelineError
from pipeline.git.history import list_tree, resolve_ref
from pipeline.periods import split_bounds
from pipeline.rust.files import path_skip_reason, skip_reason
from pipeline.text import decode
from pipeline.timeline import Timeline
from pipeline.tokens.layout import END_OF_TEXT, MARKER_TOKENS

# Bump when training changes (corpus choice, trainer options): part of the trained key.
TRAINER_VERSION = 4
# Longer lines (embedded data, fixtures) stay out of training: they teach no code idiom,
# and BPE training time grows with the square of a word's length.
MAX_TRAINING_LINE = 1000
def _pin_path(settings: Settings) -> Path:
    # One repository keeps the key it had before repos= existed, and so its remembered pin.
    paths = [each.repository for each in settings.repository_settings()]
    key = store.content_key(["pin", paths[0] if len(paths) == 1 else paths, "train period"])
    return settings.cache / "tokenizer" / f"pin-{key}.msgpack"


def pinned_commits(settings: Settings, sources: list, timeline: Timeline) -> list:
    """Per repository (sources: (settings, repo, reader) in repos= order), the commit whose
    tree trains the tokenizer, or None for one without commits in the train period: the
    setting, else the remembered pin, else (the first build) each one's last commit
    before val begins, the train period being cut across all repositories at once."""
    if settings.tokenizer_commit:
        return [resolve_ref(sources[0][1], settings.tokenizer_commit)]
    pin = store.read_record(_pin_path(settings))
    if pin is None:
        val_start, _ = split_bounds([c["committer_time"] for c in timeline.commits], settings)
        last = {}
        for commit, source in zip(timeline.commits[:max(val_start, 1)], timeline.sources):
            last[source] = commit["sha"]
        pin = {"commits": [last.get(source) for source in range(len(sources))]}
        store.write_record(_pin_path(settings), pin)
    return pin["commits"] if "commits" in pin else [pin["commit"]]   # or an earlier version's


def forget_pin(settings: Settings) -> None:
    """Make the next build train a new tokenizer on the ref's commit as of then."""
    _pin_path(settings).unlink(missing_ok=True)


def _rust_files_at(settings: Settings, repo, reader, commit: str):
    """The text of every Rust file in commit's tree that a build would read, in path order."""
    for path, blob in sorted(list_tree(repo, commit, (b".rs",)).items()):
        if path_skip_reason(path, settings.exclude_globs()) is not None:
            continue
        data = reader.read(blob)
        if data is not None and skip_reason(data, settings.max_file_bytes) is None:
            text = decode(data)
            yield "".join(line for line in text.splitlines(keepends=True)
                          if len(line) <= MAX_TRAINING_LINE)


def train_tokenizer(texts, vocab_size: int) -> Tokenizer:
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=MARKER_TOKENS,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tokenizer.train_from_iterator(texts, trainer)
    return tokenizer


def add_missing_markers(tokenizer: Tokenizer) -> list[str]:
    """Add the marker tokens the tokenizer lacks as special tokens; returns those added."""
    missing = [token for token in MARKER_TOKENS if tokenizer.token_to_id(token) is None]
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


def _pins_value(pins: list, names: list):
    """One repository's pin as the single commit it always was (its key stays); several's
    with their names, which the tokenizer's info records."""
    return pins[0] if len(pins) == 1 else [[name, pin] for name, pin in zip(names, pins)]


def _tokenizer_key(settings: Settings, sources: list, timeline: Timeline) -> str:
    if settings.tokenizer:
        source = store.digest(_given_path(settings).read_bytes())
        return store.content_key(["file", source, settings.add_marker_tokens and MARKER_TOKENS])
    pins = pinned_commits(settings, sources, timeline)
    return store.content_key(["trained", _pins_value(pins, timeline.names),
                              settings.vocab_size, settings.max_file_bytes, settings.exclude,
                              TRAINER_VERSION, MARKER_TOKENS])


def _build(settings: Settings, sources: list, timeline: Timeline) -> tuple[Tokenizer, dict]:
    """The tokenizer, and where it came from and which special tokens were added to it."""
    if settings.tokenizer:
        path = _given_path(settings)
        tokenizer = _load_given(path)
        if tokenizer.token_to_id(END_OF_TEXT) is None and not settings.add_marker_tokens:
            raise PipelineError(
                f"tokenizer={path} has no {END_OF_TEXT} token, which ends every example. "
                "Give a StarCoder-style tokenizer.json, or set add_marker_tokens=true to add "
                "the markers it lacks.")
        added = add_missing_markers(tokenizer) if settings.add_marker_tokens else []
        return tokenizer, {"source": f"file:{path}", "added_tokens": added,
                           "trained_on_commit": None}
    pins = pinned_commits(settings, sources, timeline)
    corpus = itertools.chain.from_iterable(
        _rust_files_at(each, repo, reader, commit)
        for (each, repo, reader), commit in zip(sources, pins) if commit is not None)
    tokenizer = train_tokenizer(corpus, settings.vocab_size)
    if len(pins) == 1:
        return tokenizer, {"source": f"trained:{pins[0]}", "added_tokens": [],
                           "trained_on_commit": pins[0]}
    named = {name: commit for name, commit in zip(timeline.names, pins)}
    return tokenizer, {"source": "trained:" + ",".join(f"{name}@{commit}" for name, commit
                                                       in named.items()),
                       "added_tokens": [], "trained_on_commit": named}


def prepare_tokenizer(settings: Settings, sources: list, timeline: Timeline) -> dict:
    """Make sure the run's tokenizer is in the cache; point the run at it and return its info.
    sources: (settings, repo, blob reader) of each repository, in repos= order."""
    info = cached_tokenizer(settings, sources, timeline)
    store.write_record(store.pointer_path(settings.cache, "tokenizer"), info)
    return info


def cached_tokenizer(settings: Settings, sources: list, timeline: Timeline) -> dict:
    """The info of the run's tokenizer, built and stored in the cache if it is not there."""
    key = _tokenizer_key(settings, sources, timeline)
    info_path = settings.cache / "tokenizer" / f"{key}.msgpack"
    info = store.read_record(info_path)
    if info is None or not Path(info["path"]).is_file():
        tokenizer, origin = _build(settings, sources, timeline)
        text = tokenizer.to_str().encode()
        json_path = settings.cache / "tokenizer" / f"{key}.json"
        store.write_atomic(json_path, text)
        info = {"path": str(json_path), "hash": store.digest(text), **origin}
        store.write_record(info_path, info)
    return info


def current_tokenizer_info(settings: Settings) -> dict:
    info = store.read_record(store.pointer_path(settings.cache, "tokenizer"))
    if info is None:
        raise PipelineError("the tokenizer is missing from the cache; run `doit` to build it.")
    return info


def load_tokenizer(path: str) -> Tokenizer:
    return Tokenizer.from_file(path)

