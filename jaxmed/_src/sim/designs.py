"""Registry of simulation designs (spec mediation.md §7) and their ground truths.

A ``Design`` (``jaxmed._src.sim.design``) describes data only: a simulator under the
behaviour policy, the policies of the estimand (target π_e, control π_0, behaviour π_b),
rollouts under any policy, the true nuisance functions, and its truth. Which estimator
configuration fits a design is decided by the estimator families
(``jaxmed._src.mediation.design_config``, ``jaxmed._src.longterm.design_estimators``).
The long-term designs S1/S2 (``jaxmed._src.longterm.designs``, built on ``Design``) are
registered here too; that module does not import this one, so there is no import cycle.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os

import jax
import numpy as np

from jaxmed._src import policies as P
from jaxmed._src.precision import precision
from jaxmed._src.sim.design import Design
from jaxmed._src.longterm.designs import all_longterm_designs
from jaxmed._src.sim import drift as dr
from jaxmed._src.sim import multidim as md
from jaxmed._src.sim import semi_synthetic as ss
from jaxmed._src.sim import toy
from jaxmed._src.sim.truth import (ChainModel, MediationTruth, exact_binary_truth,
                                   simulated_truth)

__all__ = ["Design", "register_design", "get_design", "list_designs", "truth", "policy_value",
           "TRUTHS_PATH", "load_cached_truths", "DriftDesign", "drift_design"]

TRUTHS_PATH = os.path.join(os.path.dirname(__file__), "truths.json")


_REGISTRY: dict[str, Design] = {}


def register_design(design: Design, *, overwrite: bool = False) -> Design:
    """Adds ``design`` to the registry (``ValueError`` if the name is taken and not ``overwrite``)."""
    if not isinstance(design, Design):
        raise ValueError(f"design: expected a Design, got {type(design).__name__}")
    if design.name in _REGISTRY and not overwrite:
        raise ValueError(f"design: a design named {design.name!r} is already registered")
    _REGISTRY[design.name] = design
    return design


def get_design(name: str) -> Design:
    """The registered design called ``name``.

    >>> get_design("semi-synthetic").state_dim
    1
    """
    if isinstance(name, Design):
        return name
    if name not in _REGISTRY:
        raise ValueError(f"name: unknown design {name!r}; registered: {list_designs()}")
    return _REGISTRY[name]


def list_designs(kind: str | None = None) -> list[str]:
    """Names of the registered designs (optionally of one ``kind``), in registration order."""
    return [n for n, d in _REGISTRY.items() if kind is None or d.kind == kind]


@functools.lru_cache(maxsize=1)
def _read_truths_file(path: str) -> dict:
    with open(path) as f:
        return json.load(f)


def load_cached_truths(path: str = TRUTHS_PATH) -> dict:
    """The committed truths JSON as a dict (name -> entry)."""
    return dict(_read_truths_file(path))


def _truth_from_entry(entry: dict) -> MediationTruth:
    return MediationTruth(np.asarray(entry["eta"], dtype=np.float64),
                          np.asarray(entry["eta_se"], dtype=np.float64), dict(entry["effects"]),
                          dict(entry["se"]), entry["method"], dict(entry["settings"]))


def truth(design, *, recompute: bool = False, key=None, rollout_policy=None, target_policy=None,
          **settings) -> MediationTruth:
    """True η1..η5 and IDE, IME, DDE, DME, ATE of a design (spec mediation.md §2).

    Binary-state designs (toy*) are computed exactly from the stationary laws. For the
    continuous designs the committed ``truths.json`` (written by
    ``experiments/compute_truths.py``) is read, unless ``recompute=True``, which reruns
    the long-run simulation (``jaxmed._src.sim.truth.simulated_truth``) in float64.

    Args:
      design: a ``Design`` or its registry name.
      recompute: rerun the simulation instead of reading the cache.
      key: ``jax.random`` key for a recompute (default ``jax.random.key(seed)`` with the
        design's cached seed).
      rollout_policy: π_e used to roll out the π_e and G chains when it differs from
        the weighting π_e (only for reproducing the original's multidim bug B6); implies
        a recompute.
      target_policy: any π_e (e.g. a learned ``LogisticPolicy``) in place of the design's:
        the truth of that policy's decomposition (exact for binary-state designs, otherwise
        a recompute with the design's simulation settings unless overridden).
      **settings: n_chains, n_steps, burn_in, batch_size overriding the design's defaults.

    Returns:
      ``MediationTruth``.

    >>> t = truth("toy1")
    >>> round(t.effects["IDE"], 8), t.method
    (-1.27668596, 'exact')
    """
    design = get_design(design)
    model = design.chain_model
    if model is None:
        raise ValueError(f"design: {design.name!r} has no mediation truth")
    target_policy = P.as_policy(target_policy, design.state_dim)  # "logistic:0.7" works too
    rollout_policy = P.as_policy(rollout_policy, design.state_dim)
    weight_policy = design.target_policy if target_policy is None else target_policy
    with precision(np.float64):
        if model.next_state_prob is not None and rollout_policy is None:
            return exact_binary_truth(model, weight_policy)
        if (not recompute and rollout_policy is None and target_policy is None and not settings
                and key is None):
            entries = load_cached_truths()
            if design.name not in entries:
                raise ValueError(f"design: no cached truth for {design.name!r} in {TRUTHS_PATH}; "
                                 f"run experiments/compute_truths.py or pass recompute=True")
            return _truth_from_entry(entries[design.name])
        opts = dict(design.truth_settings)
        opts.update(settings)
        seed = int(opts.pop("seed", 0))
        if key is None:
            key = jax.random.key(seed)
        else:
            seed = None
        target = weight_policy if rollout_policy is None else rollout_policy
        out = simulated_truth(key, model, target, weight_policy, **opts)
        out.settings.update(seed=seed, design=design.name,
                            rollout_policy="target" if rollout_policy is None else repr(rollout_policy))
        return out


def policy_value(design, policy, *, key=None, n_chains: int = 1000, n_steps: int = 1000,
                 burn_in: int = 200, batch_size: int = 250):
    """Long-run average reward η^π = E_{d^π} Σ_a π(a|S) E_m r(S, a, m) of any policy.

    Exact for binary-state designs (SE 0); otherwise simulated as η1 of
    ``simulated_truth`` with π_e replaced by ``policy`` (noise-free inner expectations,
    batch-means SE).

    Args:
      design: a ``Design`` or its name.
      policy: any policy with ``prob_one`` (e.g. a learned ``LogisticPolicy``).
      key: ``jax.random`` key (default ``jax.random.key(0)``).
      n_chains, n_steps, burn_in, batch_size: simulation size.

    Returns:
      ``(value, se)`` floats.

    >>> v, se = policy_value("toy1", P.toy_target_policy())
    >>> round(v, 8), se
    (2.39701065, 0.0)
    """
    design = get_design(design)
    model = design.chain_model
    policy = P.as_policy(policy, design.state_dim)  # "logistic:0.7" works too
    with precision(np.float64):
        if model.next_state_prob is not None:
            return float(exact_binary_truth(model, policy).eta[0]), 0.0
        key = jax.random.key(0) if key is None else key
        out = simulated_truth(key, model, policy, policy, n_chains=n_chains, n_steps=n_steps,
                              burn_in=burn_in, batch_size=batch_size)
        return float(out.eta[0]), float(out.eta_se[0])


# ----------------------------------------------------------------------------------------
# The mediation designs of spec §7.

_TRUTH_SETTINGS = dict(n_chains=2400, n_steps=2000, burn_in=200, batch_size=250, seed=20231)


def _cached_truth(name):
    return lambda: truth(name)


def _semi_design(name, sigma, description):
    def simulate(key, n, horizon):
        return ss.simulate_semi_synthetic(key, n, horizon, sigma=sigma)

    def rollout(key, n, horizon, policy=None, mediator_policy=None):
        return ss.simulate_semi_synthetic(key, n, horizon, sigma=sigma, policy=policy,
                                          mediator_policy=mediator_policy)

    model = ChainModel(ss.semi_synthetic_initial_state, ss.semi_synthetic_draw_noise,
                       ss.semi_synthetic_transition, sigma,
                       lambda s, am, a, sig: ss.semi_synthetic_expected_reward(s, am, a, sig))
    nuisances = dict(
        mediator_mean=ss.semi_synthetic_mediator_mean, mediator_sd=sigma,
        reward_mean=ss.semi_synthetic_reward_mean, reward_sd=sigma,
        next_state_mean=ss.semi_synthetic_next_state_mean, next_state_sd=sigma,
        expected_reward=lambda s, am, a: ss.semi_synthetic_expected_reward(s, am, a, sigma))
    return Design(name, "mediation", 1, 2, simulate, P.semi_synthetic_target_policy(),
                  P.always_control(), P.behaviour_policy_semi_synthetic(), _cached_truth(name),
                  25 if name == "semi-synthetic" else 50, description, rollout, nuisances, model,
                  dict(_TRUTH_SETTINGS))


@dataclasses.dataclass(frozen=True)
class DriftDesign(Design):
    """A ``Design`` with exogenous drift (``jaxmed._src.sim.drift``) of strength κ.

    Data only: ``exogenous_drift`` says the environment moves over calendar time; the
    estimator families choose what fits (``mediation.design_config``: the stationary and the
    calendar-time pipelines on the same data).
    """

    strength: float = 1.0
    exogenous_drift: bool = True


def drift_design(strength: float = 1.0, name: str = "semi-synthetic-drift") -> DriftDesign:
    """The semi-synthetic design with exogenous drift of strength κ (issue 15; ``sim.drift``).

    ``truth()`` is for the default window T = 25 (``sim.drift.cached_drift_truth``; other T:
    ``cached_drift_truth(strength, T)``); ``rollout`` repeats the window's path with period
    ``horizon``.
    """
    sigma = 2.0

    def simulate(key, n, horizon):
        return dr.simulate_semi_synthetic_drift(key, n, horizon, strength=strength, sigma=sigma)

    def rollout(key, n, horizon, policy=None, mediator_policy=None):
        return dr.simulate_semi_synthetic_drift(key, n, horizon, strength=strength, sigma=sigma,
                                                policy=policy, mediator_policy=mediator_policy)

    return DriftDesign(name, "mediation", 1, 2, simulate, P.semi_synthetic_target_policy(),
                       P.always_control(), P.behaviour_policy_semi_synthetic(),
                       lambda: dr.cached_drift_truth(strength, 25), 25,
                       f"Semi-synthetic with exogenous drift, strength {strength:g} (issue 15)",
                       rollout, strength=float(strength))


def _multidim_design():
    sigma = 1.0

    def simulate(key, n, horizon):
        return md.simulate_multidim(key, n, horizon, sigma=sigma)

    def rollout(key, n, horizon, policy=None, mediator_policy=None):
        return md.simulate_multidim(key, n, horizon, sigma=sigma, policy=policy,
                                    mediator_policy=mediator_policy)

    model = ChainModel(md.multidim_initial_state, md.multidim_draw_noise, md.multidim_transition,
                       sigma, lambda s, am, a, sig: md.multidim_expected_reward(s, am, a, sig))
    nuisances = dict(
        mediator_mean=md.multidim_mediator_mean, mediator_sd=sigma,
        reward_mean=md.multidim_reward_mean, reward_sd=sigma,
        next_state_mean=md.multidim_next_state_mean, next_state_sd=sigma,
        expected_reward=lambda s, am, a: md.multidim_expected_reward(s, am, a, sigma))
    return Design("multidim", "mediation", 2, 2, simulate, P.multidim_target_policy(),
                  P.always_control(), P.behaviour_policy_semi_synthetic(),
                  _cached_truth("multidim"), 100,
                  "Multidimensional d_S = d_M = 2, σ = 1 (spec §7.3); π_e = expit(0.7 mean s)",
                  rollout, nuisances, model, dict(_TRUTH_SETTINGS))


def _toy_design(name, iid, description):
    transition = toy._transition_iid if iid else toy._transition_with_state

    def simulate(key, n, horizon):
        return toy.simulate_toy(key, n, horizon, iid=iid)

    def rollout(key, n, horizon, policy=None, mediator_policy=None):
        return toy.simulate_toy(key, n, horizon, iid=iid, policy=policy,
                                mediator_policy=mediator_policy)

    model = ChainModel(toy.toy_initial_state, toy.toy_draw_noise, transition, None,
                       lambda s, am, a, p: toy.toy_expected_reward(s, am, a),
                       lambda s, am, a: toy.toy_next_state_prob_integrated(s, am, a, iid))
    nuisances = dict(
        mediator_prob=toy.toy_mediator_prob, reward_prob=toy.toy_reward_prob,
        reward_mean=toy.toy_reward_mean,
        next_state_prob=lambda s, a, m: toy.toy_next_state_prob(s, a, m, iid),
        expected_reward=toy.toy_expected_reward)
    return Design(name, "mediation", 1, 1, simulate, P.toy_target_policy(), P.always_control(),
                  toy.toy_behaviour_policy(), lambda: truth(name), 50, description, rollout,
                  nuisances, model, {}, support="binary")


register_design(_semi_design("semi-synthetic", 2.0,
                             "Semi-synthetic d_S = 1, d_M = 2, σ = 2 (spec §7.1)"))
for _s in (1, 2, 3):
    register_design(_semi_design(f"variance-{_s}", float(_s),
                                 f"Variance impact: semi-synthetic with σ_M = σ_S = {_s} (spec §7.2)"))
register_design(_multidim_design())
register_design(drift_design(dr.DRIFT_STRENGTHS["large"]))
register_design(_toy_design("toy1", False, "Toy I: binary S, A, M; R ∈ {0, 10} (spec §7.4)"))
register_design(_toy_design("toy2-iid", True, "Toy II iid: S' ~ Bern(0.2) (spec §7.5)"))
register_design(_toy_design("toy2-state", False, "Toy II with state = Toy I's DGP (spec §7.5)"))
for _d in all_longterm_designs():
    register_design(_d)
