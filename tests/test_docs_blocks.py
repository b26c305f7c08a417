"""Every fenced code block of README.md and docs/*.md is executed, so a document cannot drift
from the code.

Rules (all explicit here; nothing is skipped silently):

* every fence carries a language: ``python`` blocks are executed (``exec``, fresh namespace),
  ``bash`` blocks are run with ``bash -euo pipefail`` in a subprocess; ``text`` marks what is
  not code (directory layouts, file formats, signatures) and is not executed;
* all blocks run in one temporary working directory, README.md first, in document order
  (the README writes the ``data.csv`` that the later shell examples read);
* ``REWRITES`` below change a block before it runs; each rule must apply at least once to its
  document (a stale rule fails the test):
  - ``python3 -m pip install ... &&`` is removed: the package under test is already importable;
  - the test-suite command gets ``--collect-only``: the suite is what is running this test;
  - a command starting with ``jaxmed`` runs as ``python3 -m jaxmed`` (same entry point, no
    dependence on the console script being on PATH);
  - sizes shrink (N, T, replications) to keep the run short;
* blocks listed in ``SLOW`` (a mediation study, the policy optimisation) run in the
  ``slow`` test; every other block runs in CI.
"""

import glob
import json
import os
import re
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

sys.path.insert(0, os.path.dirname(__file__))
from _cli_run import ROOT, subprocess_env  # noqa: E402

DOCS = ["README.md"] + sorted(os.path.relpath(p, ROOT) for p in glob.glob(os.path.join(ROOT, "docs", "*.md")))
FENCE = re.compile(r"^```([^\n`]*)\n(.*?)^```[ \t]*$", re.S | re.M)
LANGUAGES = ("python", "bash", "text")

# (document or "*", regular expression, replacement)
REWRITES = [
    ("README.md", r"python3 -m pip install [^&\n]*&& ", ""),
    ("README.md", r"python3 -m pytest -m \"not slow\" -n 3 --dist loadfile -q",
     f"python3 -m pytest -m \"not slow\" -q --collect-only -p no:cacheprovider {ROOT}/tests"),
    ("*", r"(?m)^jaxmed ", "python3 -m jaxmed "),
    ("README.md", r"jaxmed study semi-synthetic --n 100,200 --horizon 25 --reps 8",
     "jaxmed study semi-synthetic --n 50 --horizon 10 --reps 2"),
    ("README.md", r"design\.simulate\(jax\.random\.key\(0\), 500, 25\)",
     "design.simulate(jax.random.key(0), 50, 10)"),
    ("docs/study.md", r"n=\[100, 500, 1500\], horizon=25", "n=[20], horizon=5"),
    ("docs/study.md", r"reps=100", "reps=2"),
    ("docs/study.md", r"--n 100,500,1500 --horizon 25 --reps 100", "--n 20 --horizon 5 --reps 2"),
    ("docs/study.md", r"--n 50 --reps 100 --seed 0 --share", "--n 20 --horizon 5 --reps 4 --seed 0 --share"),
    ("docs/differentiable.md", r"\bsteps=50\b", "steps=5"),
    ("docs/differentiable.md", r"n_chains=200, n_steps=500", "n_chains=20, n_steps=50"),
]

# (document, text that identifies the block): run by the slow test only
SLOW = [
    ("docs/study.md", "res = study.run("),
    ("docs/study.md", "jaxmed study semi-synthetic"),
    ("docs/study.md", "--share $i/4"),
    ("docs/differentiable.md", "optimize_policy(data"),
]


def read_blocks():
    blocks = []
    for doc in DOCS:
        text = open(os.path.join(ROOT, doc), encoding="utf-8").read()
        for i, m in enumerate(FENCE.finditer(text)):
            blocks.append((doc, i, m.group(1).strip(), m.group(2)))
    return blocks


BLOCKS = read_blocks()


def is_slow(doc, code):
    return any(doc == d and marker in code for d, marker in SLOW)


def rewrite(doc, code, used):
    for k, (where, pattern, repl) in enumerate(REWRITES):
        if where in ("*", doc):
            code, count = re.subn(pattern, repl, code)
            if count:
                used.add((k, doc))
    return code


def test_every_block_has_a_language_and_every_rule_applies():
    bad = [(doc, i, lang) for doc, i, lang, _ in BLOCKS if lang not in LANGUAGES]
    assert not bad, f"fenced blocks need a language among {LANGUAGES}: {bad}"
    used = set()
    for doc, _, lang, code in BLOCKS:
        rewrite(doc, code, used)
    for k, (where, pattern, _) in enumerate(REWRITES):
        docs = DOCS if where == "*" else [where]
        assert any((k, d) in used for d in docs), f"rewrite rule {pattern!r} matches nothing in {where}"
    for doc, marker in SLOW:
        assert any(d == doc and marker in code for d, _, _, code in BLOCKS), (doc, marker)
    # every document with code has at least one block that runs in CI or in the slow test
    assert sum(lang != "text" for _, _, lang, _ in BLOCKS) >= 10


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    return tmp_path_factory.mktemp("docs")


def run_block(doc, lang, code, workdir, namespaces):
    code = rewrite(doc, code, set())
    if lang == "python":
        cwd = os.getcwd()
        os.chdir(workdir)
        try:
            scope = {"__name__": f"docs_{doc}"}
            exec(compile(code, doc, "exec"), scope)
        finally:
            os.chdir(cwd)
        namespaces.append((doc, scope))
    elif lang == "bash":
        proc = subprocess.run(["bash", "-euo", "pipefail", "-c", code], cwd=workdir,
                              env=subprocess_env(), capture_output=True, text=True, timeout=1800)
        assert proc.returncode == 0, f"{doc}:\n{code}\nstdout:\n{proc.stdout[-3000:]}\nstderr:\n{proc.stderr[-3000:]}"


@pytest.fixture(scope="module")
def namespaces():
    return []


FAST = [b for b in BLOCKS if b[2] != "text" and not is_slow(b[0], b[3])]
HEAVY = [b for b in BLOCKS if b[2] != "text" and is_slow(b[0], b[3])]


@pytest.mark.parametrize("doc, index, lang, code", FAST,
                         ids=[f"{d}-{i}-{lang}" for d, i, lang, _ in FAST])
def test_block_runs(doc, index, lang, code, workdir, namespaces):
    run_block(doc, lang, code, workdir, namespaces)


def test_readme_python_and_shell_estimates_agree(workdir, namespaces):
    """The README's own-data example: the Python result and `jaxmed estimate --out` agree."""
    scope = next(s for d, s in namespaces if d == "README.md" and "result" in s and "df" in s)
    doc = json.loads((workdir / "effects.json").read_text())
    got = pd.DataFrame(doc["effects"])
    ref = scope["result"].to_frame()
    np.testing.assert_allclose(got["estimate"], ref["estimate"], rtol=1e-9)
    assert doc["horizon"] == scope["data"].horizon == 10
    assert (workdir / "runs" / "quickstart" / "figure.png").exists()


@pytest.mark.slow
@pytest.mark.parametrize("doc, index, lang, code", HEAVY,
                         ids=[f"{d}-{i}-{lang}" for d, i, lang, _ in HEAVY])
def test_heavy_block_runs(doc, index, lang, code, workdir, namespaces):
    if not (workdir / "data.csv").exists():  # written by the README's own-data block
        block = next(b for b in BLOCKS if b[0] == "README.md" and 'to_csv("data.csv"' in b[3])
        run_block(block[0], block[2], block[3], workdir, namespaces)
    run_block(doc, lang, code, workdir, namespaces)
