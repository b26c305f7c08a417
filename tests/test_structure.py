"""Package structure: no import cycle in ``jaxmed/_src``; designs describe data only.

* The import graph of ``jaxmed/_src`` (every ``import`` and ``from ... import`` statement, at
  module level or inside a function, read with ``ast``) has no cycle.
* The design modules import in a fresh interpreter on their own (no partially initialised
  module), in either order.
* No registered design carries an estimator configuration; the configuration that fits a
  design is looked up by the estimator families.
"""

import ast
import dataclasses
import os
import subprocess
import sys

import pytest

import jaxmed
from jaxmed._src.mediation.config import MediationConfig
from jaxmed._src.mediation.design_config import config_for_design
from jaxmed._src.sim.design import Design
from jaxmed._src.sim.designs import get_design, list_designs

ROOT = os.path.dirname(jaxmed.__file__)
SRC = os.path.join(ROOT, "_src")


def _module_name(path):
    rel = os.path.relpath(path, os.path.dirname(ROOT))[:-3].replace(os.sep, ".")
    return rel[: -len(".__init__")] if rel.endswith(".__init__") else rel


def _import_graph():
    modules = {}
    for dirpath, _, files in os.walk(SRC):
        for f in files:
            if f.endswith(".py"):
                modules[_module_name(os.path.join(dirpath, f))] = os.path.join(dirpath, f)
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
                    base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1]
                                    + ([base] if base else []))
                targets = [base] + [f"{base}.{a.name}" for a in node.names]
            for t in targets:
                if t in modules and t != name:
                    deps.add(t)
        graph[name] = deps
    return graph


def _find_cycle(graph):
    state, stack = {}, []

    def visit(u):
        state[u] = 1
        stack.append(u)
        for v in sorted(graph[u]):
            if state.get(v) == 1:
                return stack[stack.index(v):] + [v]
            if v not in state:
                found = visit(v)
                if found:
                    return found
        stack.pop()
        state[u] = 2
        return None

    for u in sorted(graph):
        if u not in state:
            found = visit(u)
            if found:
                return found
    return None


def test_import_graph_of_src_has_no_cycle():
    graph = _import_graph()
    assert len(graph) > 40
    # the graph sees real edges, lazy (in-function) imports included
    assert "jaxmed._src.longterm.designs" in graph["jaxmed._src.sim.designs"]
    assert "jaxmed._src.sim.design" in graph["jaxmed._src.longterm.designs"]
    assert _find_cycle(graph) is None, " -> ".join(_find_cycle(graph))


def test_cycle_finder_finds_a_cycle():
    assert _find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _find_cycle({"a": {"b"}, "b": set()}) is None


@pytest.mark.parametrize("first", ["jaxmed._src.longterm.designs", "jaxmed._src.sim.designs",
                                   "jaxmed._src.sim.design", "jaxmed._src.study.catalog",
                                   "jaxmed._src.mediation.design_config",
                                   "jaxmed._src.longterm.design_estimators"])
def test_design_modules_import_alone_in_a_fresh_interpreter(first):
    code = (f"import importlib, sys; importlib.import_module({first!r}); "
            "from jaxmed._src.sim.designs import list_designs; "
            "print(','.join(list_designs()))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().split(",") == list_designs()


def test_designs_carry_no_estimator_configuration():
    fields = {f.name for f in dataclasses.fields(Design)}
    assert "mediation_config" not in fields and "n_boot" not in fields
    for name in list_designs():
        d = get_design(name)
        assert not hasattr(d, "mediation_config") and not hasattr(d, "estimator_spec"), name
        for f in dataclasses.fields(d):
            assert not isinstance(getattr(d, f.name), MediationConfig), (name, f.name)
    # the simulators do not import the estimators
    graph = _import_graph()
    for name in ("jaxmed._src.sim.design", "jaxmed._src.sim.designs", "jaxmed._src.longterm.designs"):
        bad = [d for d in graph[name]
               if d.startswith("jaxmed._src.mediation") or d == "jaxmed._src.longterm.api"]
        assert not bad, (name, bad)


def test_configuration_is_looked_up_from_the_data_description():
    assert config_for_design(get_design("toy1")) == MediationConfig.binary()
    assert config_for_design(get_design("toy2-iid")) == MediationConfig.binary()
    assert config_for_design(get_design("semi-synthetic")) == MediationConfig()
    with pytest.raises(ValueError, match="design: support must be one of"):
        config_for_design(dataclasses.replace(get_design("toy1"), support="ternary"))
