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
    Runs each sampled mutant (those without a result yet; or the mutants named by ``--names``)
    against the CI test files of its module (below): ``pytest -x -m "not slow"`` in
    ``WORKDIR/mutants`` with ``MUTANT_UNDER_TEST`` set, niced, under a limit of ``--limit-s``
    CPU seconds (``ulimit -t``: a loaded machine slows a mutant down without making it a
    timeout; a wall-clock backstop at 4x). Exit status 1 (a test failed) is killed, 0 survived,
    152 / 124 (CPU / wall limit) timeout (not killed). Results go to ``WORKDIR/results.json``
    after each mutant, with the first failing test id (``FAILED``/``ERROR`` of the short summary,
    or the file of a collection error), so a rerun resumes.
``verify``
    Checks that no kill comes from a test that fails anyway: every distinct killing test id is
    run once with no mutant active (``MUTANT_UNDER_TEST`` empty, so the trampolines call the
    original functions; one pytest for all ids, ``-rA``, shared by the mutants that id killed);
    a killing collection error is checked by collecting that file unmutated. Each killed mutant
    gets ``verified``: true when its killing test passed unmutated; false (a kill without a
    test id, or by a test that does not pass unmutated) makes ``summary`` count it not killed.
    Outcomes per test id are kept in ``WORKDIR/verify.json``; a later ``verify`` (after more
    ``run``) runs only the ids not checked yet.
``summary``
    Killed share (verified kills) with its binomial SE, overall and per module group, over the
    measured prefix of the sample (its first mutants up to the first without a result), and the
    mutants not killed; ``--out`` also writes it as JSON (committed under
    ``benchmarks/results/``).
``show``
    The diff of each mutant named by ``--names`` against the original function.

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
import resource
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


def _failed_ids(out_text):
    """The failing test ids of a pytest run's short summary (``-ra``): ``FAILED id`` / ``ERROR
    id``, plus ``ERROR collecting tests/x.py`` as the file's path (a collection error)."""
    ids = re.findall(r"^(?:FAILED|ERROR) (tests/\S+)", out_text, flags=re.M)
    ids += re.findall(r"^_+ ERROR collecting (tests/\S+) _+$", out_text, flags=re.M)
    return list(dict.fromkeys(ids))


def run(workdir, limit_s, cache_dir, stop_at, names=None):
    """Runs the sampled mutants without a result (or the ``names`` given, in that order)."""
    smp = _load(os.path.join(workdir, "sample.json"))
    res_path = os.path.join(workdir, "results.json")
    results = _load(res_path, {})
    mroot = os.path.join(workdir, "mutants")
    env = dict(os.environ, PYTHONPATH=mroot, JAX_COMPILATION_CACHE_DIR=cache_dir,
               JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0")
    todo = names or smp["mutants"]
    sel = smp["tests"]
    missing = sorted({module_of_mutant(n) for n in todo} - set(sel))
    if missing:
        sel = dict(sel, **test_selection(missing))
    for name in todo:
        if name in results:
            continue
        if stop_at and time.time() > stop_at:
            print("stop time reached")
            break
        files = sel[module_of_mutant(name)]["direct"]
        t0 = time.time()
        if not files:
            rc, tail = 33, "no test file refers to the module"
            out_text = ""
        else:
            # the limit is on CPU seconds (``ulimit -t``; SIGXCPU, exit 152), so a loaded
            # machine slows a mutant without turning it into a timeout; ``timeout`` is a
            # wall-clock backstop at 4x the limit
            cmd = ["timeout", "-k", "10", str(4 * limit_s), "nice", "-n", "19", "bash", "-c",
                   f'ulimit -t {limit_s}; exec "$@"', "_", sys.executable, "-m",
                   "pytest", "-x", "-q", "-p", "no:cacheprovider", "-m", "not slow", *files]
            cpu0 = resource.getrusage(resource.RUSAGE_CHILDREN)
            p = subprocess.run(cmd, cwd=mroot, env=dict(env, MUTANT_UNDER_TEST=name),
                               capture_output=True, text=True)
            cpu1 = resource.getrusage(resource.RUSAGE_CHILDREN)
            rc, tail = p.returncode, (p.stdout + p.stderr)[-600:]
            out_text = p.stdout
        status = {0: "survived", 1: "killed", 3: "killed", 124: "timeout", 137: "timeout",
                  152: "timeout", -24: "timeout", 33: "no tests"}.get(rc, f"error {rc}")
        cpu = (cpu1.ru_utime + cpu1.ru_stime - cpu0.ru_utime - cpu0.ru_stime) if files else 0.0
        results = _load(res_path, {})  # reread: another ``run`` may have written meanwhile
        results[name] = {"status": status, "rc": rc, "seconds": round(time.time() - t0, 1),
                         "cpu_s": round(cpu, 1),
                         "n_files": len(files), "failed": _failed_ids(out_text)[:1],
                         "tail": tail, "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        _dump(results, res_path)
        print(f"{status:9s} {results[name]['seconds']:6.1f}s {name}", flush=True)


def verify(workdir, limit_s):
    """Runs every distinct killing test id once with no mutant active (``MUTANT_UNDER_TEST``
    empty: the trampolines call the original functions) and records, per killed mutant,
    ``verified``: its killing test passed unmutated. A test id that is a file (a collection
    error) is checked by collecting the file unmutated. A kill without a recorded test id, or
    whose test does not pass unmutated, is not verified and ``summary`` counts it as not killed."""
    res_path = os.path.join(workdir, "results.json")
    results = _load(res_path, {})
    killed = {n: r for n, r in results.items() if r["status"] == "killed"}
    # a test id already checked (recorded in verify.json, or the killing test of a verified
    # kill) is not rerun: the unmutated tree and its tests are the same
    cache_path = os.path.join(workdir, "verify.json")
    cache = _load(cache_path, {})
    passed = {t for t, ok in cache.items() if ok}
    passed |= {t for r in killed.values() if r.get("verified") for t in r["failed"]}
    ids = sorted({t for r in killed.values() for t in r["failed"] if "::" in t} - set(cache)
                 - passed)
    files = sorted({t for r in killed.values() for t in r["failed"] if "::" not in t}
                   - set(cache) - passed)
    mroot = os.path.join(workdir, "mutants")
    env = dict(os.environ, PYTHONPATH=mroot, MUTANT_UNDER_TEST="")
    base = ["timeout", "-k", "10", str(limit_s), "nice", "-n", "19", sys.executable, "-m",
            "pytest", "-q", "-p", "no:cacheprovider"]
    if ids:
        p = subprocess.run(base + ["-rA", *ids], cwd=mroot, capture_output=True, text=True,
                           env=env)
        passed |= set(re.findall(r"^PASSED (\S+)", p.stdout, flags=re.M))
        print((p.stdout + p.stderr)[-800:])
    for f in files:
        p = subprocess.run(base + ["--collect-only", f], cwd=mroot, capture_output=True,
                           text=True, env=env)
        if p.returncode == 0:
            passed.add(f)
    cache.update({t: t in passed for t in ids + files})
    cache.update({t: True for t in passed})
    _dump(cache, cache_path)
    for n, r in killed.items():
        r["verified"] = bool(r["failed"]) and all(t in passed for t in r["failed"])
    _dump(results, res_path)
    bad = sorted(n for n, r in killed.items() if not r["verified"])
    print(f"{len(ids)} killing tests and {len(files)} collection errors run unmutated now; "
          f"{len(killed) - len(bad)} of {len(killed)} kills verified; not verified: {bad}")
    return 0 if not bad else 1


def _function_text(src, name):
    """The source of ``def name(`` in ``src`` (a function or a method), up to the next line
    indented no deeper than its ``def``."""
    m = re.search(rf"^([ \t]*)def {re.escape(name)}\(", src, flags=re.M)
    indent = len(m.group(1))
    lines = src[m.start():].split("\n")
    end = next((i for i, line in enumerate(lines[1:], 1)
                if line.strip() and len(line) - len(line.lstrip()) <= indent), len(lines))
    return "\n".join(line[indent:] for line in lines[:end]) + "\n"


def show(workdir, name):
    """The unified diff of one mutant against the original function (read from the mutated
    tree's trampolined file, where both are defined)."""
    import difflib
    mod = module_of_mutant(name)
    path = os.path.join(workdir, "mutants", *mod.split(".")) + ".py"
    src = open(path, encoding="utf-8").read()
    func = name[len(mod) + 1:]
    base = func.rsplit("__mutmut_", 1)[0]
    orig = _function_text(src, base + "__mutmut_orig").replace(base + "__mutmut_orig", base)
    mut = _function_text(src, func).replace(func, base)
    diff = "".join(difflib.unified_diff(orig.splitlines(True), mut.splitlines(True), n=1))
    print(f"{name}\n{diff}")


def summary(workdir, out_path=None, start=0):
    """Killed share ± binomial SE, overall and per group, over the measured prefix of the sample
    (its mutants from index ``start`` up to the first one without a result, so that mutants run
    out of order, e.g. by ``run --names``, do not bias it). A kill counts only when ``verify`` confirmed it
    (its killing test passes unmutated); kills not yet verified are reported apart."""
    smp = _load(os.path.join(workdir, "sample.json"))
    pop = _load(os.path.join(workdir, "population.json"))
    results = _load(os.path.join(workdir, "results.json"), {})
    groups = {}
    for m, c in pop["per_module"].items():
        groups.setdefault(group_of(m), {"population": 0})["population"] += c
    prefix = []
    for name in smp["mutants"][start:]:
        if name not in results:
            break
        prefix.append(name)
    rows = {}
    for name in prefix:
        r0 = results[name]
        g = group_of(module_of_mutant(name))
        for key in (g, "all"):
            r = rows.setdefault(key, {"run": 0, "killed": 0, "unverified": 0, "false_kills": 0,
                                      "no_test_id": 0, "seconds": []})
            r["run"] += 1
            r["killed"] += r0["status"] == "killed" and r0.get("verified") is True
            r["unverified"] += r0["status"] == "killed" and "verified" not in r0
            r["no_test_id"] += r0["status"] == "killed" and not r0["failed"]
            r["false_kills"] += (r0["status"] == "killed" and r0.get("verified") is False
                                 and bool(r0["failed"]))
            r["seconds"].append(r0["seconds"])
    out = {"seed": smp["seed"], "population": len(pop["mutants"]), "start": start,
           "measured_k": len(prefix),
           "first_result_at": min((results[n].get("at", "") for n in prefix), default=""),
           "last_result_at": max((results[n].get("at", "") for n in prefix), default="")}
    for key, r in rows.items():
        p = r["killed"] / r["run"]
        out[key] = {"run": r["run"], "killed": r["killed"], "killed_share": round(p, 4),
                    "se": round(math.sqrt(p * (1 - p) / r["run"]), 4),
                    "kills_not_verified": r["unverified"], "false_kills": r["false_kills"],
                    "kills_without_test_id": r["no_test_id"],
                    "median_s": float(np.median(r["seconds"])),
                    "population": groups.get(key, {"population": len(pop["mutants"])})
                    ["population"]}
    out["not_killed"] = {n: results[n]["status"] + ((" (no killing test id recorded)"
                                                     if not results[n]["failed"] else
                                                     " (killing test fails unmutated)"
                                                     if "verified" in results[n] else
                                                     " (kill not verified)")
                                                    if results[n]["status"] == "killed" else "")
                         for n in prefix if not (results[n]["status"] == "killed"
                                                 and results[n].get("verified") is True)}
    out["other_results"] = {n: results[n]["status"] for n in results if n not in set(prefix)}
    print(json.dumps(out, indent=1, ensure_ascii=False))
    if out_path:
        _dump(out, out_path)
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("step", choices=["generate", "sample", "run", "verify", "summary", "show"])
    ap.add_argument("--workdir", default="/tmp/jaxmed-mutation-core")
    ap.add_argument("--seed", type=int, default=20261130)
    ap.add_argument("--k", type=int, default=200)
    ap.add_argument("--limit-s", type=int, default=300,
                    help="CPU-time limit per mutant (run), wall-clock limit per test (verify)")
    ap.add_argument("--cache-dir", default="/tmp/jaxmed-mutation-core-xla")
    ap.add_argument("--stop-after-s", type=float, default=0.0,
                    help="start no mutant after this many seconds (0: run the whole sample)")
    ap.add_argument("--out", default=None, help="summary: also write the JSON here")
    ap.add_argument("--start", type=int, default=0,
                    help="summary: the measured part starts at this index of the sample")
    ap.add_argument("--names", nargs="*", default=None,
                    help="run: these mutants (in this order) instead of the sample")
    a = ap.parse_args(argv)
    wd = os.path.abspath(a.workdir)
    if a.step == "generate":
        generate(wd)
    elif a.step == "sample":
        sample(wd, a.seed, a.k)
    elif a.step == "verify":
        sys.exit(verify(wd, a.limit_s * 4))
    elif a.step == "run":
        run(wd, a.limit_s, a.cache_dir, time.time() + a.stop_after_s if a.stop_after_s else 0,
            a.names)
    elif a.step == "show":
        for n in a.names or ():
            show(wd, n)
    else:
        summary(wd, a.out, a.start)


if __name__ == "__main__":
    main()
