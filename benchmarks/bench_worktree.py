"""Shared by the command-line benchmarks that compare this tree with an older commit: a
temporary worktree of that commit, and the result file under ``results/``."""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import shutil
import subprocess
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


@contextlib.contextmanager
def base_worktree(rev: str, prefix: str):
    """``(work directory, worktree of rev)``; both removed on exit."""
    work = tempfile.mkdtemp(prefix=prefix)
    base = os.path.join(work, "base")
    subprocess.run(["git", "-C", ROOT, "worktree", "add", "--detach", "-f", base, rev],
                   check=True, capture_output=True)
    try:
        yield work, base
    finally:
        subprocess.run(["git", "-C", ROOT, "worktree", "remove", "--force", base], capture_output=True)
        shutil.rmtree(work, ignore_errors=True)


def write_result(out: dict, name: str, path: str | None = None) -> str:
    """Writes ``out`` to ``path`` or ``results/<name>-<UTC timestamp>.json``; returns the path."""
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    path = path or os.path.join(HERE, "results", f"{name}-{stamp}.json")
    with open(path, "w") as fh:
        json.dump(out, fh, indent=1)
    print(path)
    return path


def main_against_base(argv, doc: str, base: str, prefix: str, options: dict, compare) -> None:
    """Parses ``--base`` (default ``base``), the integer ``options`` (name -> default) and
    ``--out``, then runs ``compare(args, work directory, worktree of --base)``."""
    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument("--base", default=base)
    for name, default in options.items():
        ap.add_argument(f"--{name}", type=int, default=default)
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    with base_worktree(args.base, prefix) as (work, tree):
        compare(args, work, tree)
