"""Mutation score of the core modules, estimated on a uniformly random sample of their mutants.

The core modules (issue #11) are ``jaxmed/_src/mediation/``, ``jaxmed/_src/longterm/`` and
``jaxmed/_src/study/runner.py``. Running every one of their mutants against the CI suite does not
fit a session (thousands of mutants, tens of seconds each), so the score is estimated on a sample
(CONTRIBUTING.md, "Mutation score", gives the command and the measured numbers).

Steps (each a sub-command; ``--workdir`` is a scratch directory outside the repository):

``generate``
    Copies the repository into ``WORKDIR`` with ``[tool.mutmut] only_mutate`` widened to the core
    modules (the repository's own configuration, the two-module measurement, stays as it is) and
    makes mutmut 3 write the mutated tree ``WORKDIR/mutants`` (its trampolines: one copy of each
    mutated function, chosen at call time by ``MUTANT_UNDER_TEST``). Writes
    ``WORKDIR/population.json``: every mutant name, sorted, and the count per module.
``sample``
    Draws the sample: ``numpy.random.default_rng(SEED).permutation`` of the sorted population, the
    first ``K`` names (a larger ``K`` with the same seed extends the same sample).
``run``
    Runs each sampled mutant (those without a result yet) against the CI test files of its module
    (below): ``pytest -x -m "not slow"`` in ``WORKDIR/mutants`` with ``MUTANT_UNDER_TEST`` set,
    under ``timeout``. Exit status 1 (a test failed) is killed, 0 survived, 124 timeout (not
    killed). Results go to ``WORKDIR/results.json`` after each mutant (a rerun resumes).
``verify``
    Reruns each killing test (the first failure recorded per killed mutant) with no mutant
    active: all must pass, so no kill comes from a test that fails anyway.
``summary``
    Killed share with its binomial SE, overall and per module group, and the survivors.

Test selection, by what a test file refers to (not by which tests kill): the CI test files (those
with a non-slow test) that import the mutated module or a name defined in it (directly, through a
public re-export, or as an attribute of an imported ``jaxmed`` module), ``tests/conftest.py``'s
slowest files last. The files that reach the module only through a module importing it are listed
in ``sample.json`` (``importers``) but not run: for almost every module they are the whole suite
(about half an hour per surviving mutant on one core). Tests outside the selection may also kill a
mutant, and a timeout counts as not killed, so the measured killed share is a lower bound for the
CI suite's.
"""

import argparse
import ast
import importlib
import json
import math
import os
import re
import shutil
import subprocess
import sys
import time

import numpy as np

CORE = ["jaxmed/_src/mediation/*", "jaxmed/_src/longterm/*", "jaxmed/_src/study/runner.py"]
ALSO_COPY = ["tests", "docs", "experiments", "benchmarks", "README.md", "CONTRIBUTING.md"]
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def group_of(module):
    """The module group of a dotted module name: mediation, longterm or runner."""
    return "runner" if module.endswith("study.runner") else module.split(".")[2]


def module_of_mutant(name):
    """``jaxmed._src.x.y.x_f__mutmut_3`` (or a method ``xǁCǁm``) -> ``jaxmed._src.x.y``."""
    return re.split(r"\.x[_ǁ]", name, maxsplit=1)[0]


def _load(path, default=None):
    if not os.path.exists(path):
        return default
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def _dump(obj, path):
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=1, sort_keys=True)
    os.replace(tmp, path)


def _scratch_pyproject(text):
    """The repository's pyproject with ``[tool.mutmut]`` replaced by the core-module one."""
    head, sep, tail = text.partition("[tool.mutmut]")
    if not sep:
        raise ValueError("pyproject.toml has no [tool.mutmut] section")
    rest = re.search(r"^\[", tail, flags=re.M)
    tail = tail[rest.start():] if rest else ""
    section = ("[tool.mutmut]\nsource_paths = [\"jaxmed/\"]\n"
               f"only_mutate = {json.dumps(CORE)}\nalso_copy = {json.dumps(ALSO_COPY)}\n\n")
    return head + section + tail


def generate(workdir):
    if os.path.exists(workdir):
        shutil.rmtree(workdir)
    ignore = shutil.ignore_patterns(".git", "mutants", "__pycache__", "*.egg-info", ".pytest_cache")
    shutil.copytree(ROOT, workdir, ignore=ignore)
    with open(os.path.join(workdir, "pyproject.toml"), encoding="utf-8") as f:
        text = f.read()
    with open(os.path.join(workdir, "pyproject.toml"), "w", encoding="utf-8") as f:
        f.write(_scratch_pyproject(text))
    code = ("import os, mutmut.__main__ as m\n"
            "from mutmut.utils.file_utils import copy_src_dir, copy_also_copy_files\n"
            "m.set_mutant_under_test('mutant_generation')\n"
            "os.makedirs('mutants', exist_ok=True)\n"
            "copy_src_dir(); copy_also_copy_files()\n"
            "print(m.create_mutants(1))\n")
    subprocess.run([sys.executable, "-c", code], cwd=workdir, check=True,
                   env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"})
    names = []
    meta_root = os.path.join(workdir, "mutants", "jaxmed")
    for dirpath, _, files in os.walk(meta_root):
        for f in files:
            if f.endswith(".py.meta"):
                names += list(_load(os.path.join(dirpath, f))["exit_code_by_key"])
    names.sort()
    per_module = {}
    for n in names:
        per_module[module_of_mutant(n)] = per_module.get(module_of_mutant(n), 0) + 1
    _dump({"only_mutate": CORE, "mutants": names, "per_module": per_module},
          os.path.join(workdir, "population.json"))
    print(f"{len(names)} mutants in {len(per_module)} modules")


# ---- test selection -------------------------------------------------------------------------

def _src_import_graph():
    """Module -> the jaxmed modules it imports (every import statement, read with ``ast``)."""
    pkg = os.path.join(ROOT, "jaxmed")
    modules = {}
    for dirpath, _, files in os.walk(pkg):
        for f in files:
            if f.endswith(".py"):
                rel = os.path.relpath(os.path.join(dirpath, f), ROOT)[:-3].replace(os.sep, ".")
                modules[rel[: -len(".__init__")] if rel.endswith(".__init__") else rel] = \
                    os.path.join(dirpath, f)
    graph = {}
    for name, path in modules.items():
        tree = ast.parse(open(path, encoding="utf-8").read(), path)
        package = name if path.endswith("__init__.py") else name.rsplit(".", 1)[0]
        deps = set()
        for node in ast.walk(tree):
            targets = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = package.split(".")
                    base = ".".join(parts[: len(parts) - node.level + 1] + ([base] if base else []))
                targets = [base] + [f"{base}.{a.name}" for a in node.names]
            deps |= {t for t in targets if t in modules and t != name}
        graph[name] = deps
    return graph


def _resolve(dotted):
    """The module that defines the object named ``dotted`` (``jaxmed.a.b.c``), or None."""
    parts = dotted.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        for attr in parts[i:]:
            if not hasattr(obj, attr):
                break
            obj = getattr(obj, attr)
        if isinstance(obj, type(sys)):
            return obj.__name__
        return getattr(obj, "__module__", None) or ".".join(parts[:i])
    return None


def _referenced_modules(path):
    """The jaxmed modules a test file refers to: its imports and attribute chains on them."""
    tree = ast.parse(open(path, encoding="utf-8").read(), path)
    alias, refs = {}, set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.name.split(".")[0] == "jaxmed":
                    refs.add(a.name)
                    alias[a.asname or a.name.split(".")[0]] = a.name if a.asname else "jaxmed"
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "jaxmed":
            for a in node.names:
                refs.add(f"{node.module}.{a.name}")
                alias[a.asname or a.name] = f"{node.module}.{a.name}"
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            chain, n = [], node
            while isinstance(n, ast.Attribute):
                chain.append(n.attr)
                n = n.value
            if isinstance(n, ast.Name) and n.id in alias:
                refs.add(".".join([alias[n.id]] + chain[::-1]))
    return {m for m in (_resolve(r) for r in refs) if m and m.startswith("jaxmed")}


def _is_ci_file(path):
    """A test file with at least one test that is not marked slow (a whole-file mark counts)."""
    text = open(path, encoding="utf-8").read()
    if re.search(r"^pytestmark\s*=.*slow", text, flags=re.M):
        return False
    return re.search(r"^\s*(async\s+)?def test_", text, flags=re.M) is not None


def _longest_first():
    """``tests/conftest.py``'s list of the slowest test files (measured there)."""
    tree = ast.parse(open(os.path.join(ROOT, "tests", "conftest.py"), encoding="utf-8").read())
    for node in tree.body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "LONGEST_FIRST":
            return ast.literal_eval(node.value)
    return ()


def test_selection(modules):
    """Module -> {"direct": files that refer to it, "importers": files that refer to a module
    importing it}; paths relative to the root, the slow files of ``LONGEST_FIRST`` last."""
    sys.path.insert(0, ROOT)
    graph = _src_import_graph()
    importers = {}                                       # module -> modules that import it
    for m, deps in graph.items():
        for d in deps:
            importers.setdefault(d, set()).add(m)
    tests_dir = os.path.join(ROOT, "tests")
    files = sorted(f for f in os.listdir(tests_dir) if f.startswith("test_") and f.endswith(".py"))
    refs = {f: _referenced_modules(os.path.join(tests_dir, f)) for f in files
            if _is_ci_file(os.path.join(tests_dir, f))}
    out = {}
    for m in modules:
        up, todo = set(), [m]
        while todo:
            for u in importers.get(todo.pop(), ()):
                if u not in up:
                    up.add(u)
                    todo.append(u)
        slow = _longest_first()
        direct = sorted((f for f, r in refs.items() if m in r), key=lambda f: (f in slow, f))
        trans = [f for f, r in refs.items() if f not in direct and r & up]
        out[m] = {"direct": [f"tests/{f}" for f in direct], "importers": [f"tests/{f}" for f in trans]}
    return out


# ---- sample, run, summary -------------------------------------------------------------------

def sample(workdir, seed, k):
    pop = _load(os.path.join(workdir, "population.json"))
    names = pop["mutants"]
    order = np.random.default_rng(seed).permutation(len(names))
    chosen = [names[i] for i in order[:k]]
    sel = test_selection(sorted({module_of_mutant(n) for n in chosen}))
    _dump({"seed": seed, "k": k, "population": len(names), "mutants": chosen, "tests": sel},
          os.path.join(workdir, "sample.json"))
    print(f"{len(chosen)} of {len(names)} mutants (seed {seed})")


def run(workdir, limit_s, cache_dir, stop_at):
    smp = _load(os.path.join(workdir, "sample.json"))
    res_path = os.path.join(workdir, "results.json")
    results = _load(res_path, {})
    mroot = os.path.join(workdir, "mutants")
    env = dict(os.environ, PYTHONPATH=mroot, JAX_COMPILATION_CACHE_DIR=cache_dir,
               JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0")
    for name in smp["mutants"]:
        if name in results:
            continue
        if stop_at and time.time() > stop_at:
            print("stop time reached")
            break
        files = smp["tests"][module_of_mutant(name)]["direct"]
        t0 = time.time()
        if not files:
            rc, tail = 33, "no test file refers to the module"
            out_text = ""
        else:
            cmd = ["timeout", "-k", "10", str(limit_s), "nice", "-n", "19", sys.executable, "-m",
                   "pytest", "-x", "-q", "-p", "no:cacheprovider", "-m", "not slow", *files]
            p = subprocess.run(cmd, cwd=mroot, env=dict(env, MUTANT_UNDER_TEST=name),
                               capture_output=True, text=True)
            rc, tail = p.returncode, (p.stdout + p.stderr)[-600:]
            out_text = p.stdout
        status = {0: "survived", 1: "killed", 3: "killed", 124: "timeout", 137: "timeout",
                  33: "no tests"}.get(rc, f"error {rc}")
        failed = re.findall(r"^(?:FAILED|ERROR) (\S+)", out_text, flags=re.M)
        results[name] = {"status": status, "seconds": round(time.time() - t0, 1),
                         "n_files": len(files), "failed": failed[:1],
                         "tail": "" if status == "killed" else tail}
        _dump(results, res_path)
        print(f"{status:9s} {results[name]['seconds']:6.1f}s {name}", flush=True)


def verify(workdir, limit_s):
    """Reruns the test that killed each killed mutant with no mutant active: every one must
    pass (a test failing on the unmutated tree would be a false kill)."""
    results = _load(os.path.join(workdir, "results.json"), {})
    ids = sorted({t for r in results.values() if r["status"] == "killed" for t in r["failed"]})
    no_id = sorted(n for n, r in results.items() if r["status"] == "killed" and not r["failed"])
    mroot = os.path.join(workdir, "mutants")
    cmd = ["timeout", "-k", "10", str(limit_s), "nice", "-n", "19", sys.executable, "-m", "pytest",
           "-q", "-p", "no:cacheprovider", *ids]
    p = subprocess.run(cmd, cwd=mroot, capture_output=True, text=True,
                       env=dict(os.environ, PYTHONPATH=mroot, MUTANT_UNDER_TEST=""))
    print((p.stdout + p.stderr)[-1500:])
    print(f"{len(ids)} killing tests rerun unmutated: exit status {p.returncode}; "
          f"killed mutants without a recorded test id: {no_id}")
    return p.returncode


def summary(workdir):
    smp = _load(os.path.join(workdir, "sample.json"))
    pop = _load(os.path.join(workdir, "population.json"))
    results = _load(os.path.join(workdir, "results.json"), {})
    groups = {}
    for m, c in pop["per_module"].items():
        groups.setdefault(group_of(m), {"population": 0})["population"] += c
    rows = {}
    for name in smp["mutants"]:
        if name not in results:
            continue
        g = group_of(module_of_mutant(name))
        for key in (g, "all"):
            r = rows.setdefault(key, {"run": 0, "killed": 0, "seconds": []})
            r["run"] += 1
            r["killed"] += results[name]["status"] == "killed"
            r["seconds"].append(results[name]["seconds"])
    out = {}
    for key, r in rows.items():
        p = r["killed"] / r["run"]
        out[key] = {"run": r["run"], "killed": r["killed"], "killed_share": round(p, 4),
                    "se": round(math.sqrt(p * (1 - p) / r["run"]), 4),
                    "median_s": float(np.median(r["seconds"])),
                    "population": groups.get(key, {"population": pop and len(pop["mutants"])})
                    ["population"]}
    out["not_killed"] = {n: results[n]["status"] for n in smp["mutants"]
                         if n in results and results[n]["status"] != "killed"}
    print(json.dumps(out, indent=1))
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("step", choices=["generate", "sample", "run", "verify", "summary"])
    ap.add_argument("--workdir", default="/tmp/jaxmed-mutation-core")
    ap.add_argument("--seed", type=int, default=20261130)
    ap.add_argument("--k", type=int, default=200)
    ap.add_argument("--limit-s", type=int, default=300, help="wall-clock limit per mutant")
    ap.add_argument("--cache-dir", default="/tmp/jaxmed-mutation-core-xla")
    ap.add_argument("--stop-after-s", type=float, default=0.0,
                    help="start no mutant after this many seconds (0: run the whole sample)")
    a = ap.parse_args(argv)
    wd = os.path.abspath(a.workdir)
    if a.step == "generate":
        generate(wd)
    elif a.step == "sample":
        sample(wd, a.seed, a.k)
    elif a.step == "verify":
        sys.exit(verify(wd, a.limit_s * 4))
    elif a.step == "run":
        run(wd, a.limit_s, a.cache_dir, time.time() + a.stop_after_s if a.stop_after_s else 0)
    else:
        summary(wd)


if __name__ == "__main__":
    main()
