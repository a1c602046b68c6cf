"""Write a deterministic synthetic Rust history at a large repository's scale.

    python bench/synthetic_history.py PATH                 # 600 commits, ~360k lines
    python bench/synthetic_history.py PATH --long          # 20,000 smaller commits

The large shape: about 1,100 Rust files and 360,000 lines at HEAD, file sizes from a few
hundred bytes to about 400 KB (the largest changed most often), 600 commits of which a
third are merges of a side branch, about 9,000 changed file versions in all. Commits are
streamed into `git fast-import`, so the history takes seconds to write.
"""

from __future__ import annotations

import argparse
import random
import subprocess
from pathlib import Path

START = 1_600_000_000
AUTHOR = b"Synthetic Author <synthetic@example.com>"


def _function(rng: random.Random, name: str, lines: int) -> list:
    body = [f"    let v{i} = compute_{rng.randrange(50)}(input, {rng.randrange(1000)});"
            for i in range(max(lines - 4, 1))]
    return [f"/// Computes {name}.", f"pub fn {name}(input: &Config) -> Result<u64, Error> {{",
            *body, "    Ok(0)", "}", ""]


def _struct(rng: random.Random, name: str) -> list:
    fields = [f"    pub field_{i}: u{rng.choice((8, 16, 32, 64))}," for i in range(rng.randrange(2, 8))]
    return ["#[derive(Debug, Clone)]", f"pub struct {name} {{", *fields, "}", "",
            f"impl {name} {{", "    pub fn new() -> Self {", "        todo!()", "    }", "}", ""]


class SyntheticFile:
    """One Rust file as a list of item blocks, so edits touch whole items."""

    def __init__(self, rng: random.Random, index: int, target_lines: int):
        self.rng, self.index, self.blocks, self.counter = rng, index, [], 0
        self.header = ["use crate::config::Config;", "use crate::error::Error;", ""]
        while sum(len(b) for b in self.blocks) < target_lines:
            self.add_item()

    def add_item(self) -> None:
        self.counter += 1
        if self.rng.random() < 0.3:
            self.blocks.append(_struct(self.rng, f"Item{self.index}x{self.counter}"))
        else:
            lines = self.rng.choice((6, 10, 20, 40))
            self.blocks.append(_function(self.rng, f"f{self.index}_{self.counter}", lines))

    def edit(self) -> None:
        """Change one line in one to three items, sometimes add an item."""
        for _ in range(self.rng.randrange(1, 4)):
            block = self.rng.choice(self.blocks)
            row = self.rng.randrange(len(block))
            if block[row].startswith("    let "):
                block[row] = block[row].replace(");", f" + {self.rng.randrange(9)});")
        if self.rng.random() < 0.3:
            self.add_item()

    def text(self) -> bytes:
        return "\n".join(self.header + [line for block in self.blocks for line in block]).encode()


def _sizes(rng: random.Random, files: int, total_lines: int) -> list:
    """Heavy-tailed line counts summing to about total_lines, capped near 400 KB per file."""
    weights = [rng.paretovariate(1.2) for _ in range(files)]
    scale = total_lines / sum(weights)
    return [max(8, min(int(w * scale), 9_000)) for w in weights]


class Writer:
    def __init__(self, path: Path):
        path.mkdir(parents=True, exist_ok=True)
        subprocess.run(["git", "init", "-q", "-b", "main", str(path)], check=True)
        self.process = subprocess.Popen(["git", "-C", str(path), "fast-import", "--quiet"],
                                        stdin=subprocess.PIPE)
        self.mark = 0

    def commit(self, branch: str, message: str, when: int, files: dict,
               parents: list) -> int:
        self.mark += 1
        out = self.process.stdin
        out.write(f"commit refs/heads/{branch}\nmark :{self.mark}\n".encode())
        out.write(b"author " + AUTHOR + f" {when} +0000\n".encode())
        out.write(b"committer " + AUTHOR + f" {when} +0000\n".encode())
        data = message.encode()
        out.write(f"data {len(data)}\n".encode() + data + b"\n")
        for index, parent in enumerate(parents):
            out.write(f"{'from' if index == 0 else 'merge'} :{parent}\n".encode())
        for path, text in files.items():
            out.write(f"M 100644 inline {path}\ndata {len(text)}\n".encode() + text + b"\n")
        return self.mark

    def close(self) -> None:
        self.process.stdin.close()
        if self.process.wait() != 0:
            raise SystemExit("git fast-import failed")


def write_history(path: Path, commits: int, files: int, lines: int, edits: int,
                  merge_every: int, seed: int = 7) -> None:
    rng = random.Random(seed)
    sources = [SyntheticFile(rng, i, n) for i, n in enumerate(_sizes(rng, files, lines))]
    # The largest files are changed most often, as in real repositories.
    weights = [len(source.blocks) for source in sources]
    paths = [f"crates/c{i % 12}/src/m{i}.rs" for i in range(files)]
    writer = Writer(path)
    when = START
    main = writer.commit("main", "Initial import", when,
                         {p: s.text() for p, s in zip(paths, sources)}, [])
    made = 1
    while made < commits:
        when += 600
        picked = set(rng.choices(range(files), weights=weights, k=edits))
        for index in picked:
            sources[index].edit()
        changed = {paths[i]: sources[i].text() for i in picked}
        if merge_every and made % merge_every == 0 and made + 1 < commits:
            side = writer.commit("side", f"Side change {made}", when, changed, [main])
            when += 60
            main = writer.commit("main", f"Merge side change {made}", when, changed,
                                 [main, side])
            made += 2
        else:
            main = writer.commit("main", f"Change {made}: edit {len(changed)} files", when,
                                 changed, [main])
            made += 1
    writer.close()
    subprocess.run(["git", "-C", str(path), "checkout", "-q", "-f", "main"], check=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", type=Path)
    parser.add_argument("--long", action="store_true", help="20,000 smaller commits")
    options = parser.parse_args()
    if options.long:
        write_history(options.path, commits=20_000, files=300, lines=40_000, edits=2,
                      merge_every=0)
    else:
        write_history(options.path, commits=600, files=1_100, lines=320_000, edits=28,
                      merge_every=3)


if __name__ == "__main__":
    main()
