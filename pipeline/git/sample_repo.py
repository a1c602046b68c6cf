"""A path in, a small deterministic Rust git history out (the default repository of `doit`).

A cargo workspace of two crates grows over a few dozen commits: shapes with a shared trait
and impls in their own modules, a units module, a second crate that uses the first, then
edits, a rename, a moved method, a deletion and a commit with a syntax error fixed by the
next one. Fixed dates, author and an isolated git config make the commit shas the same on
every machine. `extend_sample_repository` appends more commits of the same kind.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

SAMPLE_VERSION = 1
START_TIME = 1_704_067_200          # 2024-01-01T00:00:00Z
DAY = 86_400
SHAPES = [("Circle", "radius", "std::f64::consts::PI * self.radius.value() * self.radius.value()"),
          ("Square", "side", "self.side.value() * self.side.value()"),
          ("Triangle", "base", "0.5 * self.base.value() * self.base.value()"),
          ("Hexagon", "side", "1.5 * 3f64.sqrt() * self.side.value() * self.side.value()"),
          ("Ring", "outer", "std::f64::consts::PI * self.outer.value() * 0.75"),
          ("Octagon", "side", "2.0 * (1.0 + 2f64.sqrt()) * self.side.value().powi(2)")]


def git(repo: Path, *args: str, time: int = START_TIME) -> str:
    """Run git in repo with a fixed identity and date and no user or system config."""
    env = {**os.environ, "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1",
           "GIT_AUTHOR_NAME": "Sample Author", "GIT_AUTHOR_EMAIL": "author@example.com",
           "GIT_COMMITTER_NAME": "Sample Author", "GIT_COMMITTER_EMAIL": "author@example.com",
           "GIT_AUTHOR_DATE": f"{time} +0000", "GIT_COMMITTER_DATE": f"{time} +0000"}
    return subprocess.run(["git", "-C", str(repo), *args], env=env, check=True,
                          capture_output=True, text=True).stdout


def _write(repo: Path, files: dict) -> None:
    for path, text in files.items():
        target = repo / path
        if text is None:
            target.unlink()
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)


def _shape_module(name: str, field: str, area: str, extra: str = "", doc: str = "") -> str:
    return f"""use crate::shape::Shape;
use crate::units::Meters;

/// A {name.lower()} measured by its {field}.{doc}
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct {name} {{
    pub {field}: Meters,
}}

impl {name} {{
    pub fn new({field}: f64) -> Self {{
        Self {{ {field}: Meters::new({field}) }}
    }}
{extra}}}

impl Shape for {name} {{
    fn area(&self) -> f64 {{
        {area}
    }}

    fn name(&self) -> &'static str {{
        "{name.lower()}"
    }}
}}
"""


_SHAPE_TRAIT = """/// Anything with an area.
pub trait Shape {
    fn area(&self) -> f64;

    fn name(&self) -> &'static str;

    /// Area rounded to two decimals, for display.
    fn rounded_area(&self) -> f64 {
        (self.area() * 100.0).round() / 100.0
    }
}
"""

_UNITS = """/// A length in meters.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd)]
pub struct Meters(f64);

impl Meters {
    pub fn new(value: f64) -> Self {
        Meters(value)
    }

    pub fn value(&self) -> f64 {
        self.0
    }
}
"""


def _lib(modules: list) -> str:
    return "//! Geometry for the sample garden planner.\n\n" + "".join(
        f"pub mod {module};\n" for module in modules)


def _garden_plot(shapes: list, version: int) -> str:
    uses = "".join(f"use geometry::{s.lower()}::{s};\n" for s in shapes)
    factor = 1.0 + version / 10
    return f"""use geometry::shape::Shape;
{uses}
/// A plot holds beds of any shape.
pub struct Plot {{
    pub beds: Vec<Box<dyn Shape>>,
}}

impl Plot {{
    pub fn new() -> Self {{
        Plot {{ beds: Vec::new() }}
    }}

    pub fn total_area(&self) -> f64 {{
        self.beds.iter().map(|bed| bed.area()).sum::<f64>() * {factor:.1f}
    }}
}}

pub fn soil_needed(plot: &Plot, depth: f64) -> f64 {{
    plot.total_area() * depth
}}
"""


def _history() -> list:
    """(message, {path: text or None}) for every commit, oldest first."""
    modules = ["shape", "units"]
    commits = [("Start the geometry crate with the Shape trait and Meters", {
        "Cargo.toml": '[workspace]\nmembers = ["crates/geometry", "crates/garden"]\n',
        "crates/geometry/Cargo.toml": '[package]\nname = "geometry"\nversion = "0.1.0"\n',
        "crates/geometry/src/lib.rs": _lib(modules),
        "crates/geometry/src/shape.rs": _SHAPE_TRAIT,
        "crates/geometry/src/units.rs": _UNITS})]
    for name, field, area in SHAPES:
        modules.append(name.lower())
        commits.append((f"Add {name}", {
            f"crates/geometry/src/{name.lower()}.rs": _shape_module(name, field, area),
            "crates/geometry/src/lib.rs": _lib(modules)}))
    names = [name for name, _, _ in SHAPES]
    commits.append(("Start the garden crate: plots of shaped beds", {
        "crates/garden/Cargo.toml": '[package]\nname = "garden"\nversion = "0.1.0"\n\n'
                                    '[dependencies]\ngeometry = { path = "../geometry" }\n',
        "crates/garden/src/lib.rs": "pub mod plot;\n",
        "crates/garden/src/plot.rs": _garden_plot(names[:2], 0)}))
    for version, (name, field, area) in enumerate(SHAPES, start=1):
        scale = f"    pub fn scaled(&self, factor: f64) -> Self {{\n        Self::new(self.{field}.value() * factor)\n    }}\n"
        commits.append((f"{name}: add scaled()", {
            f"crates/geometry/src/{name.lower()}.rs": _shape_module(name, field, area, scale)}))
        commits.append((f"Garden: accept {name} beds and tune the area margin", {
            "crates/garden/src/plot.rs": _garden_plot(names[:min(version + 2, len(names))],
                                                      version)}))
    for name, field, area in SHAPES:
        scale = f"    pub fn scaled(&self, factor: f64) -> Self {{\n        Self::new(self.{field}.value() * factor)\n    }}\n"
        commits.append((f"{name}: document the unit of its {field}", {
            f"crates/geometry/src/{name.lower()}.rs": _shape_module(
                name, field, area, scale, doc=f"\n///\n/// The {field} is in meters.")}))
    return commits


def _late_history() -> list:
    """Commits that rename, move, delete and break then fix code, after the growth above."""
    shape_path = "crates/geometry/src/shape.rs"
    moved = _SHAPE_TRAIT.replace("    fn area(&self) -> f64;\n\n    fn name(&self) -> &'static str;\n",
                                 "    fn name(&self) -> &'static str;\n\n    fn area(&self) -> f64;\n")
    units_more = _UNITS + "\nimpl std::fmt::Display for Meters {\n    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {\n        write!(f, \"{} m\", self.0)\n    }\n}\n"
    broken = units_more.replace("    pub fn value(&self) -> f64 {\n        self.0\n    }\n",
                                "    pub fn value(&self) -> f64 {\n        self.0\n\n")
    return [
        ("Shape: list name() before area()", {shape_path: moved}),
        ("Units: display Meters with a unit suffix (WIP)",
         {"crates/geometry/src/units.rs": broken}),
        ("Units: fix the missing brace", {"crates/geometry/src/units.rs": units_more}),
        ("Docs: describe the workspace", {"README.md": "# Sample garden planner\n"}),
    ]


def _commit_all(repo: Path, history: list, first_index: int) -> None:
    for offset, (message, files) in enumerate(history):
        _write(repo, files)
        git(repo, "add", "-A")
        git(repo, "commit", "-q", "-m", message, time=START_TIME + (first_index + offset) * DAY)


def generate_sample_repository(path: Path) -> None:
    """Write the sample history to path (replacing what is there), atomically by rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}."))
    try:
        git(staging, "init", "-q", "-b", "main")
        history = _history() + _late_history()
        _commit_all(staging, history, 0)
        git(staging, "mv", "crates/geometry/src/ring.rs", "crates/geometry/src/annulus.rs")
        _write(staging, {"crates/geometry/src/lib.rs": _lib(
            ["shape", "units"] + [n.lower() for n, _, _ in SHAPES if n != "Ring"] + ["annulus"])})
        _commit_all(staging, [("Rename the ring module to annulus", {})], len(history))
        if path.exists():
            shutil.rmtree(path)
        staging.rename(path)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def commit_count(path: Path) -> int:
    return int(git(Path(path), "rev-list", "--count", "HEAD").strip())


def extend_sample_repository(path: Path, count: int) -> None:
    """Append count commits, each adding a small function module that uses the crate's types."""
    path = Path(path)
    first = commit_count(path)
    for step in range(count):
        index = first + step
        module = f"tool{index}"
        lib = (path / "crates/geometry/src/lib.rs").read_text() + f"pub mod {module};\n"
        code = (f"use crate::units::Meters;\n\n/// Tool number {index}.\npub fn measure_{index}"
                f"(length: f64) -> Meters {{\n    Meters::new(length * {index}.0)\n}}\n")
        _commit_all(path, [(f"Add tool {index}", {
            "crates/geometry/src/lib.rs": lib, f"crates/geometry/src/{module}.rs": code})], index)
