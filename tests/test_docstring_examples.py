"""Every ``>>>`` example in a jaxmed docstring runs and prints what it says (CI runs this file).

One test per module that has examples; the expected output written in the docstring is the
truth. Runs in the test session's float64 (``tests/conftest.py``).
"""

import doctest
import importlib
import pkgutil

import pytest

import jaxmed


def _modules_with_examples():
    names = [jaxmed.__name__] + [m.name for m in pkgutil.walk_packages(jaxmed.__path__, "jaxmed.")]
    out = []
    finder = doctest.DocTestFinder(exclude_empty=True)
    for name in sorted(names):
        if name == "jaxmed.__main__":  # runs the CLI when imported
            continue
        module = importlib.import_module(name)
        if any(t.examples for t in finder.find(module, name)):
            out.append(name)
    return out


MODULES = _modules_with_examples()


def test_examples_were_found():
    # the estimators, the study engine and the clipping helpers all document examples
    for name in ("jaxmed._src.mediation.clipping", "jaxmed._src.study.runner",
                 "jaxmed._src.longterm.values"):
        assert name in MODULES


# 20-61 s of compilation each: optimize_policy, the calendar-time pipeline, variant N2 and the
# drift truth run in CI in test_differentiable_policy_optimisation.py,
# test_mediation_time_effects.py, test_longterm_n2.py and test_sim_drift.py
SLOW = ("jaxmed._src.differentiable.policy_optimisation", "jaxmed._src.mediation.time_effects",
        "jaxmed._src.longterm.n2", "jaxmed._src.sim.drift")


@pytest.mark.parametrize("name", [pytest.param(m, marks=pytest.mark.slow) if m in SLOW else m
                                  for m in MODULES])
def test_docstring_examples_run(name):
    module = importlib.import_module(name)
    finder = doctest.DocTestFinder(exclude_empty=True)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    failures = []
    for test in finder.find(module, name):
        if not test.examples:
            continue
        result = runner.run(test, out=failures.append)
        del result
    assert not failures, "".join(failures)
