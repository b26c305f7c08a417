"""The command line's policy spelling ("logistic:0.7", "constant:0"; one parser,
``jaxmed.policies.parse_policy``) at every public entry point that takes a policy.

The truth is the same call with the policy object: simulations and exact truths must be equal
bit for bit; the mediation entry points must trace to the same program with the same
constants (``jax.make_jaxpr``: nothing is compiled), which makes their numbers equal.
"""

import jax
import numpy as np
import pytest

import jaxmed
from jaxmed import differentiable, mediation, sim
from jaxmed._src.mediation.effects import _control_action
from jaxmed._src.mediation.time_effects import time_effects_estimator_spec
from jaxmed.policies import ConstantPolicy, LogisticPolicy

TARGET = "logistic:0.7"
TARGET_OBJ = LogisticPolicy(np.array([0.7]), 0.0)
KEY = jax.random.key(5)


@pytest.fixture(scope="module")
def data():
    return sim.simulate_semi_synthetic(jax.random.key(1), 20, 5)


def same_program(f_text, f_obj, *args):
    a, b = jax.make_jaxpr(f_text)(*args), jax.make_jaxpr(f_obj)(*args)
    assert str(a.jaxpr) == str(b.jaxpr)
    assert len(a.consts) == len(b.consts)
    for x, y in zip(a.consts, b.consts):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def test_simulators_take_the_spelling():
    for simulate, text, obj in [
            (sim.simulate_semi_synthetic, "logistic:0.7@-0.2", LogisticPolicy(np.array([0.7]), -0.2)),
            (sim.simulate_toy, "constant:0.3", ConstantPolicy(0.3)),
            (sim.simulate_multidim, "logistic:0.5", LogisticPolicy(np.array([0.5, 0.5]), 0.0))]:
        a = simulate(KEY, 6, 4, policy=text, mediator_policy="constant:1")
        b = simulate(KEY, 6, 4, policy=obj, mediator_policy=ConstantPolicy(1.0))
        for x, y in zip(a, b):
            np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def test_truths_and_policy_values_take_the_spelling():
    text, obj = "logistic:1@1.5", LogisticPolicy(np.array([1.0]), 1.5)
    a = sim.truth("toy1", target_policy=text)
    b = sim.truth("toy1", target_policy=obj)
    assert a.method == "exact" and a.effects == b.effects
    # toy1's own π_e is expit(1.5 + s): the spelling gives the design's truth
    assert a.effects == pytest.approx(sim.truth("toy1").effects, rel=1e-14)
    assert sim.policy_value("toy1", "constant:0.25") == sim.policy_value("toy1", ConstantPolicy(0.25))
    with pytest.raises(ValueError, match="^policy: cannot read 'gauss:1'"):
        sim.policy_value("toy1", "gauss:1")
    with pytest.raises(ValueError, match="^policy: 'logistic:1,2' has 2 weights for 1"):
        sim.drift_truth(0.0, 4, target_policy="logistic:1,2")


def test_control_policy_spelling():
    assert _control_action("constant:0") == 0 and _control_action("constant:1") == 1
    with pytest.raises(ValueError, match="^control_policy: expected a deterministic"):
        _control_action("constant:0.5")


BAD = "logit:1"  # not a spelling: the parser's error proves the entry point reads text


def test_mediation_entry_points_read_the_spelling_first(data):
    """Every mediation entry point hands a text policy to the one parser before any tracing
    (so a wrong spelling costs nothing); that the valid spelling gives the object's numbers
    end to end is checked for ``mediation_effects`` in test_cli_subprocess.py (bit for bit)."""
    cfg = jaxmed.MediationConfig()
    calls = [
        lambda: mediation.mediation_core(KEY, data, BAD, 0, cfg),
        lambda: mediation.estimate_pipeline(KEY, data, np.ones(20), BAD, 0, cfg),
        lambda: mediation.ij_influence(KEY, data, BAD, 0, cfg),
        lambda: jaxmed.mediation_estimator_spec(BAD).fn(KEY, data),
        lambda: time_effects_estimator_spec(BAD).fn(KEY, data),
        lambda: differentiable.mediation_sensitivity(KEY, data, BAD, config=cfg),
        lambda: differentiable.mediation_estimates(KEY, data, np.ones(20), BAD, cfg),
        lambda: jaxmed.optimize_policy(data, BAD, key=KEY, steps=1),
        lambda: mediation.mediation_effects_time(data, BAD, key=KEY, time_effects="spline",
                                                 calendar_time=np.tile(np.arange(5), (20, 1))),
        lambda: jaxmed.mediation_effects(data, TARGET, BAD, key=KEY),
    ]
    for i, call in enumerate(calls):
        with pytest.raises(ValueError, match="^policy: cannot read 'logit:1'"):
            call()
    # the spelling's weight count is checked against the data's state dimension
    with pytest.raises(ValueError, match="^policy: 'logistic:1,2' has 2 weights for 1 state"):
        jaxmed.mediation_estimator_spec("logistic:1,2").fn(KEY, data)
