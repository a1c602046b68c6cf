"""Cross-file context of real commits in a two-crate workspace."""

from __future__ import annotations

import pytest

from conftest import build_chunk_shard
from pipeline.chunks.context import owner_names
from pipeline.config import Settings
from pipeline.git.commit_list import build_commit_list
from pipeline.records import to_plain
from pipeline.run.worker import Worker

WORKSPACE = {
    "Cargo.toml": '[workspace]\nmembers = ["crates/core", "crates/app"]\n',
    "crates/core/Cargo.toml": '[package]\nname = "net-core"\nversion = "0.1.0"\n',
    "crates/core/src/lib.rs": "pub mod model;\npub mod util;\n",
    "crates/core/src/model.rs": """/// A remote peer.
pub struct Peer {
    pub id: u64,
}

/// Says hello.
pub trait Greet {
    fn greet(&self) -> String;

    fn shout(&self) -> String {
        self.greet().to_uppercase()
    }
}
""",
    "crates/core/src/util.rs": "pub struct Config {\n    pub verbose: bool,\n}\n",
    "crates/app/Cargo.toml": '[package]\nname = "app"\nversion = "0.1.0"\n\n[dependencies]\n'
                             'net-core = { path = "../core" }\n',
    "crates/app/src/lib.rs": "pub mod other;\npub mod server;\npub mod state;\n",
    "crates/app/src/other.rs": "pub struct Config {\n    pub port: u16,\n}\n",
    "crates/app/src/state.rs": "pub struct Server {\n    pub name: String,\n}\n",
}
SERVER = """use net_core::model::{Greet, Peer};
use crate::state::Server;

pub fn serve(peer: Peer, config: Config) -> u64 {
    peer.id + BODY
}

impl Greet for Server {
    fn greet(&self) -> String {
        format!("hello from {}", self.name)
    }
}
"""


def context_of(repo, sha, qualname):
    config = Settings(repo=str(repo.path), cache_dir=str(repo.path.parent / "cache"))
    shard = build_chunk_shard(config, sha)
    (chunk,) = [c for c in shard["chunks"] if c["qualname"] == qualname]
    return chunk["context"], shard["context_counts"]


@pytest.fixture
def workspace(rust_repo):
    rust_repo.commit("workspace", {**WORKSPACE, "crates/app/src/server.rs":
                                   SERVER.replace("BODY", "1")})
    return rust_repo


def test_a_type_imported_from_another_crate_brings_its_definition(workspace):
    sha = workspace.commit("serve: add two", {
        "crates/app/src/server.rs": SERVER.replace("BODY", "2")})
    context, counts = context_of(workspace, sha, "server::serve")
    assert context[0]["kind"] == "import"
    assert "use net_core::model::Peer;" in context[0]["text"]
    peer = [s for s in context if s["name"] == "Peer"]
    assert peer == [{"kind": "struct", "path": "crates/core/src/model.rs", "name": "Peer",
                     "text": "/// A remote peer.\npub struct Peer {\n    pub id: u64,\n}",
                     "origin": "parent"}]
    assert counts["resolved_by_path"] >= 1


def test_an_ambiguous_name_gets_no_definition(workspace):
    workspace.commit("a second Config in the app crate", {
        "crates/app/src/state.rs": WORKSPACE["crates/app/src/state.rs"] +
        "\npub struct Config {\n    pub name: String,\n}\n"})
    sha = workspace.commit("serve: add three", {
        "crates/app/src/server.rs": SERVER.replace("BODY", "3")})
    context, counts = context_of(workspace, sha, "server::serve")
    assert not [s for s in context if s["name"] == "Config"]
    assert counts["ambiguous_name_skipped"] >= 1


def test_a_trait_method_gets_the_trait_signatures_and_the_type(workspace):
    sha = workspace.commit("greet louder", {"crates/app/src/server.rs": SERVER.replace(
        "hello from", "HELLO from").replace("BODY", "1")})
    context, _ = context_of(workspace, sha, "server::impl Greet for Server::greet")
    kinds = [(s["kind"], s["name"]) for s in context]
    assert kinds[1:3] == [("trait", "Greet"), ("struct", "Server")]
    trait = context[1]["text"]
    assert "fn greet(&self) -> String;" in trait and "fn shout(&self) -> String;" in trait
    assert "to_uppercase" not in trait                      # signatures, not bodies
    assert all(s["path"] != "crates/app/src/server.rs" for s in context if s["kind"] != "import")


def test_a_definition_added_in_a_later_commit_never_appears_earlier(workspace):
    uses_registry = SERVER.replace("peer.id + BODY", "Registry::size() + peer.id")
    early = workspace.commit("use a registry (not yet written)",
                             {"crates/app/src/server.rs": uses_registry})
    registry = "pub struct Registry;\n\nimpl Registry {\n    pub fn size() -> u64 {\n        0\n    }\n}\n"
    late = workspace.commit("write the registry", {
        "crates/app/src/registry.rs": registry,
        "crates/app/src/lib.rs": "pub mod other;\npub mod registry;\npub mod server;\n"
                                 "pub mod state;\n",
        "crates/app/src/server.rs": uses_registry.replace("+ peer.id", "+ peer.id + 1")})
    early_context, _ = context_of(workspace, early, "server::serve")
    assert not [s for s in early_context if s["name"] == "Registry"]
    late_context, _ = context_of(workspace, late, "server::serve")
    assert [s["path"] for s in late_context if s["name"] == "Registry"] == [
        "crates/app/src/registry.rs"]


def test_context_budgets_bound_each_snippet_and_the_total(workspace):
    sha = workspace.commit("serve: add four", {
        "crates/app/src/server.rs": SERVER.replace("BODY", "4")})
    config = Settings(repo=str(workspace.path), cache_dir=str(workspace.path.parent / "cache"),
                      context_snippet_chars=25, context_total_chars=200)
    shard = build_chunk_shard(config, sha)
    for chunk in shard["chunks"]:
        definitions = [s for s in chunk["context"] if s["kind"] != "import"]
        assert all(len(s["text"]) <= 25 for s in definitions)
        assert sum(len(s["text"]) for s in chunk["context"]) <= 200


@pytest.mark.parametrize("owner, names", [
    ("impl fmt::Display for PeerId", ["Display", "PeerId"]),
    ("impl Iterator for Walk<'a>", ["Iterator", "Walk"]), ("impl From<u8> for &'a mut Peer", ["From", "Peer"]),
    ("impl Peer", ["Peer"]), ("trait Greet", []), ("", [])])
def test_owner_names(owner, names):
    assert owner_names(owner) == names


def test_generic_parameters_locals_and_test_helpers_do_not_pull_in_definitions(workspace):
    helpers = ("pub fn E() {}\n\nmacro_rules! matched {\n    () => {};\n}\n\n"
               "#[cfg(test)]\nmod tests {\n    pub struct Walk;\n}\n")
    code = ("pub fn each<E, F: FnMut(u8) -> Result<(), E>>(mut matched: F) -> Walk {\n"
            "    matched(1).ok();\n    Walk\n}\n")
    workspace.commit("helpers", {"crates/core/src/helpers.rs": helpers,
                                 "crates/core/tests/util.rs": "pub type Result = u8;\n",
                                 "crates/app/src/each.rs": code})
    sha = workspace.commit("each: call twice", {
        "crates/app/src/each.rs": code.replace("matched(1).ok();", "matched(1).ok();\n    "
                                               "matched(2).ok();")})
    context, _ = context_of(workspace, sha, "each::each")
    assert [s for s in context if s["kind"] != "import"] == []


def test_a_commit_without_chunks_leaves_the_index_and_the_next_context_unchanged(workspace):
    """The index moves only for commits with chunks: one that changes no Rust (or only
    skipped files) leaves it where it was, and the next commit gets the context a fresh
    index gives it."""
    first = workspace.commit("Peer gets a name; serve: add two", {
        "crates/core/src/model.rs": WORKSPACE["crates/core/src/model.rs"].replace(
            "pub id: u64,", "pub id: u64,\n    pub name: String,"),
        "crates/app/src/server.rs": SERVER.replace("BODY", "2")})
    docs = workspace.commit("docs only", {"README.md": "A workspace.\n"})
    last = workspace.commit("serve: add three", {
        "crates/app/src/server.rs": SERVER.replace("BODY", "3")})
    config = Settings(repo=str(workspace.path), cache_dir=str(workspace.path.parent / "cache"))
    worker = Worker(config)
    try:
        build_commit_list(config, worker.repo)
        shards = [to_plain(worker.make("chunks", sha)[0]) for sha in (first, docs)]
        assert shards[1]["chunks"] == [] and shards[1]["context_counts"] == {}
        assert worker.index.commit == worker.commit(first).parents[0]    # not moved
        after_docs = to_plain(worker.make("chunks", last)[0])
    finally:
        worker.close()
    fresh = build_chunk_shard(config, last)
    for shard in (after_docs, fresh):
        shard.pop("seconds")
    assert after_docs == fresh
    (serve,) = [c for c in fresh["chunks"] if c["qualname"] == "server::serve"]
    # As the author saw it: with the name the commit before the docs gave it.
    assert "pub name: String," in next(s["text"] for s in serve["context"] if s["name"] == "Peer")


SEARCH = """use crate::other::Config as Settings;

pub struct Limits {
    pub max: usize,
}

pub fn search(limits: &Limits) -> Result<usize, String> {
    Ok(limits.max)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::Server;

    #[test]
    fn finds() {
        let server = Server { name: String::new() };
        let settings: Option<Settings> = None;
        assert_eq!(search(&Limits { max: 1 }).unwrap(), 1);
    }
}
"""


def test_an_import_of_a_mod_tests_reaches_only_that_module(workspace):
    """`use super::*` in `mod tests` means the file's module there; applied at the file's
    scope it named the crate root, whose `Result` alias is not the std `Result` that
    `search` returns (ripgrep's grep-searcher got its binary's alias this way)."""
    workspace.commit("search", {
        "crates/app/src/lib.rs": "pub mod other;\npub mod search;\npub mod server;\n"
                                 "pub mod state;\n\n"
                                 "pub type Result<T> = std::result::Result<T, String>;\n",
        "crates/app/src/search.rs": SEARCH})
    sha = workspace.commit("search: one more, and test it", {
        "crates/app/src/search.rs": SEARCH.replace("Ok(limits.max)", "Ok(limits.max + 1)")
        .replace("unwrap(), 1)", "unwrap(), 2)")})
    search, counts = context_of(workspace, sha, "search::search")
    assert [s for s in search if s["kind"] != "import"] == []
    finds, _ = context_of(workspace, sha, "search::tests::finds")
    # The test module's own import reaches its test, and so do the file's (`use super::*`);
    # `Limits` and `search` are the file's own.
    assert sorted((s["name"], s["path"]) for s in finds if s["kind"] != "import") == [
        ("Config", "crates/app/src/other.rs"), ("Server", "crates/app/src/state.rs")]
    assert counts["resolved_by_path"] == 2 and counts["common_name_skipped"] >= 1


def test_a_crate_the_commit_adds_is_not_the_crate_around_it(workspace):
    """A package added inside another's directory: `crate::` in its files names the new
    crate, whose definitions the same commit gives, not the enclosing crate's; so does its
    package name in another crate's `use`."""
    new_crate = {
        "crates/app/search/Cargo.toml": '[package]\nname = "app-search"\nversion = "0.1.0"\n',
        "crates/app/search/src/lib.rs": "pub mod state;\n\nuse crate::state::Server;\n\n"
                                        "pub fn serve_all(server: &Server) -> u32 {\n"
                                        "    server.id\n}\n",
        "crates/app/search/src/state.rs": "pub struct Server {\n    pub id: u32,\n}\n"}
    # The app crate uses it by its package name, which the parent tree does not know.
    count = "use app_search::state::Server;\n\npub fn count(server: &Server) -> u32 {\n" \
            "    server.id\n}\n"
    added = workspace.commit("a search crate", {**new_crate, "crates/app/src/count.rs": count})
    later = workspace.commit("serve_all: one more", {
        "crates/app/search/src/lib.rs": new_crate["crates/app/search/src/lib.rs"].replace(
            "server.id", "server.id + 1")})
    for sha, qualname, origin in ((added, "serve_all", "commit"),
                                  (added, "count::count", "commit"),
                                  (later, "serve_all", "parent")):
        context, _ = context_of(workspace, sha, qualname)
        assert [(s["path"], s["origin"]) for s in context if s["name"] == "Server"] == [
            ("crates/app/search/src/state.rs", origin)]


def test_a_name_another_workspace_crate_re_exports_is_that_crates(workspace):
    """`use net_core::Config;` where net_core's root only re-exports it: the path leads to
    no definition, and the app crate's own `Config` is not the one meant."""
    load = "use net_core::Config;\n\npub fn load(config: Config) -> bool {\n    BODY\n}\n"
    workspace.commit("re-export Config; load", {
        "crates/core/src/lib.rs": "pub mod model;\npub mod util;\n\npub use util::Config;\n",
        "crates/app/src/lib.rs": "pub mod load;\n" + WORKSPACE["crates/app/src/lib.rs"],
        "crates/app/src/load.rs": load.replace("BODY", "config.verbose")})
    sha = workspace.commit("load: say no", {
        "crates/app/src/load.rs": load.replace("BODY", "!config.verbose")})
    context, counts = context_of(workspace, sha, "load::load")
    assert [s["path"] for s in context if s["name"] == "Config"] == ["crates/core/src/util.rs"]
    assert counts["resolved_in_imported_crate"] == 1


def test_a_2015_import_of_a_crate_root_name_is_no_outside_import(workspace):
    """`use Server;` (2015 edition) names an item at the crate's root, here a re-export:
    not a dependency, so the crate's one `Server` is the one meant."""
    hello = "use Server;\n\npub fn hello(server: &Server) -> usize {\n    BODY\n}\n"
    workspace.commit("hello", {
        "crates/app/src/lib.rs": "pub mod hello;\n" + WORKSPACE["crates/app/src/lib.rs"] +
                                 "\npub use state::Server;\n",
        "crates/app/src/hello.rs": hello.replace("BODY", "server.name.len()")})
    sha = workspace.commit("hello: one more", {
        "crates/app/src/hello.rs": hello.replace("BODY", "server.name.len() + 1")})
    context, counts = context_of(workspace, sha, "hello::hello")
    assert [s["path"] for s in context if s["name"] == "Server"] == ["crates/app/src/state.rs"]
    assert "imported_from_outside" not in counts


def test_a_name_another_crate_gains_in_the_commit_is_that_crates_new_one(workspace):
    """`use net_core::Limits;` where the commit adds `Limits` to net_core: the definition
    the commit gives is the one meant, though the parent tree has an app `Limits`."""
    workspace.commit("app limits", {"crates/app/src/other.rs": WORKSPACE[
        "crates/app/src/other.rs"] + "\npub struct Limits {\n    pub max: u8,\n}\n"})
    sha = workspace.commit("core limits, used by load", {
        "crates/core/src/lib.rs": "pub mod limits;\npub mod model;\npub mod util;\n\n"
                                  "pub use limits::Limits;\n",
        "crates/core/src/limits.rs": "pub struct Limits {\n    pub max: u64,\n}\n",
        "crates/app/src/load.rs": "use net_core::Limits;\n\n"
                                  "pub fn load(limits: Limits) -> u64 {\n    limits.max\n}\n"})
    context, _ = context_of(workspace, sha, "load::load")
    assert [(s["path"], s["origin"]) for s in context if s["name"] == "Limits"] == [
        ("crates/core/src/limits.rs", "commit")]


def test_an_integration_test_crates_paths_start_at_its_own_root(workspace):
    """tests/suite/main.rs is the root of a crate of its own: 2015's `use support::..` and
    `crate::support::..` in tests/suite/build.rs name tests/suite/support, not a dependency
    and not the library's modules (which have a `Project` of their own)."""
    build = ("use support::{project, Project};\nuse crate::support::Fixture;\n\n"
             "#[test]\nfn builds() {\n    let p: Project = project();\n"
             "    let f = Fixture::default();\n    BODY\n}\n")
    workspace.commit("suite", {
        "crates/app/src/other.rs": WORKSPACE["crates/app/src/other.rs"] +
                                   "\npub struct Project;\n",
        "crates/app/tests/suite/main.rs": "mod build;\nmod support;\n",
        "crates/app/tests/suite/support/mod.rs":
            "pub struct Project {\n    pub root: String,\n}\n\n"
            "pub fn project() -> Project {\n    Project { root: String::new() }\n}\n\n"
            "#[derive(Default)]\npub struct Fixture;\n",
        "crates/app/tests/suite/build.rs": build.replace("BODY", "p.root.len();")})
    sha = workspace.commit("suite: one more check", {
        "crates/app/tests/suite/build.rs": build.replace("BODY", "assert!(p.root.is_empty());")})
    context, counts = context_of(workspace, sha, "crates::app::tests::suite::build::builds")
    support = "crates/app/tests/suite/support/mod.rs"
    found = {(s["name"], s["path"]) for s in context
             if s["path"] != "crates/app/tests/suite/build.rs"}
    assert found == {("Project", support), ("project", support), ("Fixture", support)}
    assert "imported_from_outside" not in counts


def test_a_macro_defined_in_an_inline_module_is_no_definition_for_other_files(workspace):
    """`macro_rules!` is scoped by text: cargo's read2.rs defines a `try!` inside its
    `mod imp`, which the rest of the crate never sees (its `try!` is std's); an exported
    one is the crate's."""
    use = ("pub fn load(path: &str) -> Result<u8, ()> {\n    let n = try!(parse(path));\n"
           "    check!(n);\n    BODY\n}\n")
    workspace.commit("macros", {
        "crates/app/src/lib.rs": "pub mod io;\npub mod load;\n" +
                                 WORKSPACE["crates/app/src/lib.rs"],
        "crates/app/src/io.rs": "mod imp {\n    macro_rules! try {\n        ($e:expr) => "
                                "(match $e { Ok(e) => e, Err(e) => return Err(e) })\n    }\n}\n\n"
                                "mod checks {\n    #[macro_export]\n    macro_rules! check {\n"
                                "        ($e:expr) => (assert!($e > 0))\n    }\n}\n",
        "crates/app/src/load.rs": use.replace("BODY", "Ok(n)")})
    sha = workspace.commit("load: one more", {
        "crates/app/src/load.rs": use.replace("BODY", "Ok(n + 1)")})
    context, _ = context_of(workspace, sha, "load::load")
    assert [s["name"] for s in context if s["path"] == "crates/app/src/io.rs"] == [
        "checks::check"]


def test_an_unexported_macro_of_the_library_is_not_its_binaries(workspace):
    """A `macro_rules!` at the top of the library's root is seen by the library's files,
    not by src/bin's binaries (crates of their own): pre-1.0 cargo's lib.rs `try!` was
    given to every `try!` in src/bin."""
    run = "pub fn run(n: u8) -> u8 {\n    let m = twice!(n);\n    BODY\n}\n"
    workspace.commit("twice", {
        "crates/app/src/lib.rs": "macro_rules! twice {\n    ($e:expr) => ($e * 2)\n}\n\n"
                                 "pub mod run;\n" + WORKSPACE["crates/app/src/lib.rs"],
        "crates/app/src/run.rs": run.replace("BODY", "m"),
        "crates/app/src/bin/tool.rs": run.replace("BODY", "m")})
    sha = workspace.commit("plus one", {
        "crates/app/src/run.rs": run.replace("BODY", "m + 1"),
        "crates/app/src/bin/tool.rs": run.replace("BODY", "m + 2")})
    library, _ = context_of(workspace, sha, "run::run")
    binary, _ = context_of(workspace, sha, "bin::tool::run")
    assert [s["name"] for s in library if s["kind"] == "macro"] == ["twice"]
    assert [s["name"] for s in binary if s["kind"] == "macro"] == []


def test_2015_paths_start_at_a_library_root_below_src(rust_repo):
    """Pre-2018 cargo's library root was src/cargo/lib.rs (`[lib] path`, in a manifest
    that still said `[project]`): its modules are `cargo::core`, ..., its files' `use
    core::Package;` names src/cargo/core, neither std's `core` nor a dependency, and its
    binaries' `use cargo::core::Package;` the same."""
    build = "use util::Config;\n\npub fn build(config: &Config) -> u32 {\n    BODY\n}\n"
    tool = "extern crate app;\n\nuse app::util::Config;\n\nfn run(config: &Config) -> u32 {\n" \
           "    BODY\n}\n"
    rust_repo.commit("app", {
        "Cargo.toml": '[project]\nname = "app"\n\n[lib]\nname = "app"\n'
                      'path = "src/app/lib.rs"\n',
        "src/app/lib.rs": "pub mod util;\npub mod ops;\n",
        "src/app/util/mod.rs": "pub struct Config {\n    pub jobs: u32,\n}\n",
        "src/app/ops/mod.rs": "pub mod build;\n",
        "src/app/ops/build.rs": build.replace("BODY", "config.jobs"),
        "src/bin/tool.rs": tool.replace("BODY", "config.jobs")})
    sha = rust_repo.commit("one more job", {
        "src/app/ops/build.rs": build.replace("BODY", "config.jobs + 1"),
        "src/bin/tool.rs": tool.replace("BODY", "config.jobs + 2")})
    for qualname in ("app::ops::build::build", "bin::tool::run"):
        context, counts = context_of(rust_repo, sha, qualname)
        assert [(s["name"], s["path"]) for s in context if s["kind"] != "import"] == [
            ("Config", "src/app/util/mod.rs")], qualname
    assert counts.get("resolved_by_path") == 2 and "imported_from_outside" not in counts


def test_a_path_finds_the_definition_of_the_kind_the_code_uses(rust_repo):
    """A call `pkg(..)` is the module's `fn pkg`, not its `macro_rules! pkg` (cargo's
    resolver tests have both); `Vec<_>` names no type, though `use Trait as _;` has `_`
    for an alias."""
    helpers = ("#[macro_export]\nmacro_rules! pkg {\n    ($x:expr) => (pkg($x))\n}\n\n"
               "pub fn pkg(name: &str) -> String {\n    name.to_string()\n}\n\n"
               "pub trait Named {\n    fn named(&self) -> bool;\n}\n")
    test = ("use helpers::{pkg, Named as _};\n\npub fn names() -> Vec<String> {\n"
            "    let all: Vec<_> = vec![pkg(\"a\")];\n    BODY\n}\n")
    rust_repo.commit("helpers", {"src/lib.rs": "pub mod helpers;\npub mod names;\n",
                                 "src/helpers.rs": helpers,
                                 "src/names.rs": test.replace("BODY", "all")})
    sha = rust_repo.commit("sorted", {"src/names.rs": test.replace(
        "BODY", "let mut all = all;\n    all.sort();\n    all")})
    context, _ = context_of(rust_repo, sha, "names::names")
    assert [(s["kind"], s["name"]) for s in context if s["kind"] != "import"] == [("fn", "pkg")]


def test_the_names_of_the_changed_lines_come_first_in_the_per_kind_budget(rust_repo):
    """Over context_per_kind definitions of a kind, those the changed lines use are kept:
    by name alone the three first in the alphabet would be, whatever the change is."""
    model = "".join(f"pub struct {name} {{\n    pub id: u32,\n}}\n\n"
                    for name in ("Alpha", "Beta", "Gamma", "Zeta"))
    body = ("use model::{Alpha, Beta, Gamma, Zeta};\n\n"
            "pub fn total(a: &Alpha, b: &Beta, g: &Gamma) -> u32 {\n    BODY\n}\n")
    rust_repo.commit("model", {"src/lib.rs": "pub mod model;\npub mod total;\n",
                               "src/model.rs": model,
                               "src/total.rs": body.replace("BODY", "a.id + b.id + g.id")})
    sha = rust_repo.commit("and zeta", {"src/total.rs": body.replace(
        "BODY", "let z = Zeta { id: 1 };\n    a.id + b.id + g.id + z.id")})
    context, _ = context_of(rust_repo, sha, "total::total")
    assert [s["name"] for s in context if s["kind"] == "struct"] == ["Zeta", "Alpha", "Beta"]
