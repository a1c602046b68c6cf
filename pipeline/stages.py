"""Settings in, one stage's cache entry or outputs written: the actions of the doit tasks.

Each function is one task's action. A PipelineError (a mistake the user can fix) becomes a
TaskFailed whose message the progress reporter prints as a paragraph, without a traceback.
"""

from __future__ import annotations

import functools
import shutil
import time
from pathlib import Path

from doit.exceptions import TaskFailed

from pipeline import cache, progress
from pipeline.chunking import commit_chunks, shard_key
from pipeline.commits import build_commit_list, current_commit_list, git_session, repository_path
from pipeline.config import Settings
from pipeline.context import attach_context
from pipeline.dataset import is_current, merge, merge_key
from pipeline.errors import PipelineError
from pipeline.examples import build_segments, token_shard_key
from pipeline.git_history import first_parent_changes
from pipeline.report import write_report
from pipeline.sample_repo import generate_sample_repository
from pipeline.symbols import symbol_index
from pipeline.tokenizing import (current_tokenizer_info, forget_pin, load_tokenizer,
                                 prepare_tokenizer, special_ids)


def user_errors_fail_the_task(action):
    """Wrap a task action so a PipelineError fails the task with its message alone."""
    @functools.wraps(action)
    def run(*args, **kwargs):
        try:
            action(*args, **kwargs)
        except PipelineError as error:
            return TaskFailed(str(error))
        return None
    return run


def chunk_shard_path(settings: Settings, sha: str) -> Path:
    return cache.record_path(settings.cache, "chunks", shard_key(settings, sha))


def token_shard_path(settings: Settings, sha: str, tokenizer_hash: str) -> Path:
    key = token_shard_key(settings, shard_key(settings, sha), tokenizer_hash)
    return cache.record_path(settings.cache, "tokens", key)


def ordered_shas(settings: Settings) -> list[str]:
    return [commit["sha"] for commit in current_commit_list(settings)["commits"]]


def current_merge_key(settings: Settings) -> str:
    tokenizer_hash = current_tokenizer_info(settings)["hash"]
    token_keys = [token_shard_path(settings, sha, tokenizer_hash).stem
                  for sha in ordered_shas(settings)]
    return merge_key(settings, token_keys, tokenizer_hash)


@user_errors_fail_the_task
def make_sample_repository(settings: Settings, stamp: Path) -> None:
    generate_sample_repository(Path(repository_path(settings)))
    cache.write_atomic(stamp, b"")


@user_errors_fail_the_task
def list_commits(settings: Settings) -> None:
    build_commit_list(settings)


@user_errors_fail_the_task
def build_chunk_shard(settings: Settings, sha: str) -> None:
    started = time.perf_counter()
    commit = current_commit_list(settings)["by_sha"][sha]
    repo, reader = git_session(settings)
    if len(commit.parents) > 1:
        changes = first_parent_changes(repo, commit) if settings.include_merges else None
    else:
        changes = commit.changes
    shard = commit_chunks(settings, settings.cache, reader, commit, changes)
    index = symbol_index(repo, reader, settings.cache, settings.max_file_bytes)
    index.move_to(sha)
    attach_context(shard, index, {change.new_path for change in changes or ()}, settings)
    shard["seconds"] = {"chunks": time.perf_counter() - started}
    cache.write_record(chunk_shard_path(settings, sha), shard)
    progress.add_stage_time("chunks", shard["seconds"]["chunks"])


@user_errors_fail_the_task
def build_tokenizer(settings: Settings) -> None:
    prepare_tokenizer(settings)


@user_errors_fail_the_task
def retrain_tokenizer(settings: Settings) -> None:
    forget_pin(settings)


@user_errors_fail_the_task
def build_token_shard(settings: Settings, sha: str) -> None:
    started = time.perf_counter()
    info = current_tokenizer_info(settings)
    tokenizer = load_tokenizer(info["path"])
    shard = cache.read_record(chunk_shard_path(settings, sha))
    if shard is None:
        raise PipelineError(f"the chunk shard of {sha} is missing or damaged; run `doit` again.")
    repo_name = Path(repository_path(settings)).expanduser().resolve().name
    tokens = build_segments(settings, tokenizer, special_ids(tokenizer), shard, repo_name)
    tokens["seconds"] = {**shard["seconds"], "tokens": time.perf_counter() - started}
    cache.write_record(token_shard_path(settings, sha, info["hash"]), tokens)
    progress.add_stage_time("tokens", tokens["seconds"]["tokens"])


@user_errors_fail_the_task
def merge_dataset(settings: Settings) -> None:
    started = time.perf_counter()
    info = current_tokenizer_info(settings)
    listing = current_commit_list(settings)
    paths = [token_shard_path(settings, sha, info["hash"]) for sha in ordered_shas(settings)]
    tokenizer = load_tokenizer(info["path"])
    stats = merge(settings, listing, paths, info, special_ids(tokenizer),
                  current_merge_key(settings))
    progress.add_stage_time("merge", time.perf_counter() - started)
    progress.record_outcome(stats)


@user_errors_fail_the_task
def make_report(settings: Settings) -> None:
    write_report(settings.dataset, settings.dataset / "report.png")


def merge_is_current(settings: Settings) -> bool:
    return is_current(settings, current_merge_key(settings))


def remove_outputs(settings: Settings) -> None:
    """`doit clean`: the cache (sample repository included) and the dataset directory."""
    for directory in (settings.cache, settings.dataset):
        if directory.exists():
            shutil.rmtree(directory)
            print(f"removed {directory}/")
