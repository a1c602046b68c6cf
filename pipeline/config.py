"""Defaults, [tool.pipeline], pipeline.toml and `doit name=value` in, one frozen Settings out.

Each stage reads only its own section, and each section has a hash that keys that stage's
cache entries, so a changed setting re-runs its stage and the ones after it, never the
ones before.
"""

from __future__ import annotations

import dataclasses
import functools
import tomllib
from dataclasses import dataclass, fields
from pathlib import Path

from pipeline.store import content_key
from pipeline.errors import PipelineError

PERSONAL_CONFIG = "pipeline.toml"
PROJECT_CONFIG = "pyproject.toml"
# Tokens an example spends outside its budgeted fields: repository name, path, markers.
HEADER_TOKENS = 72


@dataclass(frozen=True)
class Settings:
    # Where the history comes from; an empty repo means the generated sample repository.
    repo: str = ""
    # Several repositories into one dataset: their paths, comma-separated (repo= is the
    # one-repository form). Each is read at ref; rows name their repository.
    repos: str = ""
    ref: str = "HEAD"
    # The name rows carry (empty: the origin remote's owner/name, else the directory's).
    repo_name: str = ""
    cache_dir: str = "cache"
    dataset_dir: str = "dataset"
    # Chunking.
    include_merges: bool = False
    max_file_bytes: int = 1_000_000
    max_item_chars: int = 4000
    # What is a target: each kept when true (they are counted either way).
    keep_deletions: bool = False
    keep_whitespace_changes: bool = False
    keep_comment_changes: bool = False
    keep_duplicates: bool = False
    keep_repeated_edits: bool = False
    # Paths (globs, comma-separated) never read, besides vendor/ and third_party/ code.
    exclude: str = ""
    # Cross-file context: characters per snippet, snippets per kind, characters in all.
    context_snippet_chars: int = 500
    context_per_kind: int = 3
    context_total_chars: int = 3000
    # Tokenizer: a tokenizer.json path, or empty to train a byte-level BPE on the tree of
    # tokenizer_commit (empty: the last commit of the train period at the first build, then
    # kept).
    tokenizer: str = ""
    vocab_size: int = 32768
    tokenizer_commit: str = ""
    # With tokenizer=PATH: add the markers it lacks as new tokens (a trainer must then
    # resize its embeddings) instead of writing them as plain text.
    add_marker_tokens: bool = False
    # Examples: token budgets per field and in total.
    max_length: int = 4096
    budget_message: int = 64
    budget_old: int = 1536
    budget_new: int = 2048
    budget_context: int = 256
    loss_on_all: bool = False
    # Split by commit, in temporal order.
    val_ratio: float = 0.1
    test_ratio: float = 0.1
    # Split by date instead (UTC unless given): commits from val_from on are val, from
    # test_from on are test. Either one set replaces the ratios.
    val_from: str = ""
    test_from: str = ""
    # Drop val/test chunks whose change a train (or val) chunk already has: exact,
    # whitespace (also when only whitespace differs) or off.
    leakage_guard: str = "exact"
    # Commits whose message carries no information: keep (counted) or drop.
    message_filter: str = "keep"
    # commit: padded rows, each holding chunks of one commit; sequential: all examples
    # back to back in full windows, with segment_ids marking where each one begins.
    example_mode: str = "commit"
    # Each split is written in parts: part k holds the split's commits among the history's
    # k*commits_per_part … (k+1)*commits_per_part - 1, so adding commits rewrites only the
    # parts they change. A pull's merge writes the last train part whole: 1,000 commits
    # made that 150 MB on a 600-commit history of large files (1.8 s of its merge), 100
    # make it at most 30 MB there. A 23,000-commit history then has 231 train parts of
    # 4 MB; its whole merge took 7.0 s against 7.6 s with 1,000.
    commits_per_part: int = 100
    # Worker processes for the chunks and tokens stages (0: one per core). Outputs do not
    # depend on it, so it is in no stage's section.
    jobs: int = 0
    # Where those stages run: local (a process pool) or ray (Ray tasks on a local instance
    # started for the run, or on the cluster at ray_address). Outputs do not depend on it.
    executor: str = "local"
    ray_address: str = ""

    def chunk_section(self) -> dict:
        return {"include_merges": self.include_merges, "max_file_bytes": self.max_file_bytes,
                "max_item_chars": self.max_item_chars, "keep_deletions": self.keep_deletions,
                "keep_whitespace_changes": self.keep_whitespace_changes,
                "keep_comment_changes": self.keep_comment_changes,
                "keep_repeated_edits": self.keep_repeated_edits, "exclude": self.exclude,
                "context_snippet_chars": self.context_snippet_chars,
                "context_per_kind": self.context_per_kind,
                "context_total_chars": self.context_total_chars}

    def format_section(self) -> dict:
        return {"max_length": self.max_length, "budget_message": self.budget_message,
                "budget_old": self.budget_old, "budget_new": self.budget_new,
                "budget_context": self.budget_context, "loss_on_all": self.loss_on_all}

    def split_section(self) -> dict:
        return {"val_ratio": self.val_ratio, "test_ratio": self.test_ratio,
                "val_from": self.val_from, "test_from": self.test_from,
                "leakage_guard": self.leakage_guard, "example_mode": self.example_mode,
                "keep_duplicates": self.keep_duplicates, "message_filter": self.message_filter,
                "commits_per_part": self.commits_per_part}

    def repository_paths(self) -> list:
        """The repos= paths, in the order given, absolute: each keys its repository's
        cache entries, which `~/a` and `/home/me/a` must share."""
        return [str(Path(path.strip()).expanduser().resolve()) for path in self.repos.split(",")
                if path.strip()]

    def repository_settings(self) -> list:
        """One Settings per repository the run reads, each with its repo= set: this one for
        repo= (or the sample), else one per repos= path. The per-commit stages run on each;
        the tokenizer and the merge take them all."""
        if not self.repos:
            return [self]
        return [dataclasses.replace(self, repo=path, repos="")
                for path in self.repository_paths()]

    def exclude_globs(self) -> list:
        return [glob.strip() for glob in self.exclude.split(",") if glob.strip()]

    def section_hash(self, section: dict) -> str:
        return _section_hash(tuple(sorted(section.items())))

    @property
    def repository(self) -> str:
        """The repository to read: repo=, or the generated sample inside the cache."""
        return self.repo or str(self.cache / "sample_repo")

    @functools.cached_property
    def cache(self) -> Path:
        # Kept (in the instance's __dict__, which frozen does not guard): every shard path
        # of a 20,000-commit history starts with it.
        return Path(self.cache_dir)

    @property
    def dataset(self) -> Path:
        return Path(self.dataset_dir)


@functools.lru_cache(maxsize=64)
def _section_hash(items: tuple) -> str:
    """Remembered: every shard key of a 20,000-commit history hashes the same section."""
    return content_key(list(items))


SETTING_TYPES = {f.name: f.type for f in fields(Settings)}


def _convert(name: str, value, origin: str):
    """Turn a value from TOML or the command line into the setting's type, or say why not."""
    kind = SETTING_TYPES[name]
    problem = f"setting {name}={value!r} (from {origin}) must be {kind}"
    if kind == "bool":
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in ("1", "true", "yes", "on"):
            return True
        if text in ("0", "false", "no", "off"):
            return False
        raise PipelineError(problem + ": use true or false.")
    if kind == "int":
        if isinstance(value, bool):
            raise PipelineError(problem + ".")
        try:
            return int(value)
        except (TypeError, ValueError):
            raise PipelineError(problem + ", a whole number.") from None
    if kind == "float":
        try:
            return float(value)
        except (TypeError, ValueError):
            raise PipelineError(problem + ", a number.") from None
    if not isinstance(value, (str, int, float)) or isinstance(value, bool):
        raise PipelineError(problem + ", a string.")
    return str(value)


def _apply(values: dict, source: dict, origin: str) -> None:
    for name, value in source.items():
        if name not in SETTING_TYPES:
            known = ", ".join(sorted(SETTING_TYPES))
            raise PipelineError(
                f"unknown setting {name!r} (from {origin}). Known settings: {known}. "
                "README.md lists each with its default.")
        values[name] = _convert(name, value, origin)


def _read_toml(path: Path) -> dict:
    try:
        with open(path, "rb") as handle:
            return tomllib.load(handle)
    except tomllib.TOMLDecodeError as error:
        raise PipelineError(f"{path} is not valid TOML: {error}. Fix or remove the file.") from None


def load_settings(command_line: dict | None = None, root: Path | str = ".") -> Settings:
    """Settings from the project's files under root and command-line name=value pairs."""
    root = Path(root)
    values: dict = {}
    project = root / PROJECT_CONFIG
    if project.is_file():
        _apply(values, _read_toml(project).get("tool", {}).get("pipeline", {}), str(project))
    personal = root / PERSONAL_CONFIG
    if personal.is_file():
        _apply(values, _read_toml(personal), str(personal))
    _apply(values, command_line or {}, "the command line")
    settings = Settings(**values)
    _check_ranges(settings)
    return settings


def _check_repositories(settings: Settings) -> None:
    paths = settings.repository_paths()
    if settings.repos and settings.repo:
        raise PipelineError("give either repo= (one repository) or repos= (several, "
                            "comma-separated), not both.")
    if settings.repos and not paths:
        raise PipelineError(f"repos={settings.repos!r} names no repository; give paths "
                            "separated by commas.")
    if len(set(paths)) != len(paths):
        raise PipelineError(f"repos={settings.repos} names a repository twice.")
    if len(paths) > 1 and (settings.repo_name or settings.tokenizer_commit):
        raise PipelineError(
            "repo_name= and tokenizer_commit= each name one repository's value; with several "
            "repos= leave them unset (each repository is named by its origin remote or "
            "directory, and the tokenizer trains on every repository's train period).")


def _check_ranges(settings: Settings) -> None:
    _check_repositories(settings)
    if not (0 <= settings.val_ratio < 1 and 0 <= settings.test_ratio < 1
            and settings.val_ratio + settings.test_ratio < 1):
        raise PipelineError(
            f"val_ratio={settings.val_ratio} and test_ratio={settings.test_ratio} must each be "
            "in [0, 1) and leave some commits for training (their sum below 1).")
    budgets = ("max_length", "budget_message", "budget_old", "budget_new", "budget_context",
               "vocab_size", "max_item_chars", "max_file_bytes", "context_snippet_chars",
               "context_total_chars", "commits_per_part")
    for name in ("context_per_kind", "jobs"):
        if getattr(settings, name) < 0:
            raise PipelineError(f"setting {name} must be 0 or more.")
    if settings.budget_message < 8:
        raise PipelineError("setting budget_message must be 8 or more: a cut message ends "
                            "with a marker of a few tokens.")
    for name in budgets:
        if getattr(settings, name) <= 0:
            raise PipelineError(f"setting {name} must be positive, got {getattr(settings, name)}.")
    if settings.leakage_guard not in ("exact", "whitespace", "off"):
        raise PipelineError(f"leakage_guard={settings.leakage_guard!r} must be exact, "
                            "whitespace or off.")
    if settings.message_filter not in ("keep", "drop"):
        raise PipelineError(f"message_filter={settings.message_filter!r} must be keep or drop.")
    if settings.executor not in ("local", "ray"):
        raise PipelineError(f"executor={settings.executor!r} must be local or ray.")
    if settings.example_mode not in ("commit", "sequential"):
        raise PipelineError(f"example_mode={settings.example_mode!r} must be commit or sequential.")
    fixed = settings.budget_message + settings.budget_old + settings.budget_new + HEADER_TOKENS
    if fixed > settings.max_length:
        raise PipelineError(
            f"max_length={settings.max_length} cannot hold budget_message + budget_old + "
            f"budget_new ({fixed - HEADER_TOKENS}) plus {HEADER_TOKENS} tokens of name, path and "
            "markers. Raise max_length or lower the budgets.")

