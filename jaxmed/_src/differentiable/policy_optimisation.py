"""Policy optimisation: maximise an estimated mediation effect over a logistic policy class.

The estimand (spec mediation.md §2) contrasts a target policy π_e with the always-a0 control
π_0: ATE = η^{π_e} − η^{π_0}. Every estimator's π_0 part (η̂5 and the MR augmentation
ω̂^{π_0}κ_0(R + Δ5 − η̂5)) does not involve π_e, so

    argmax_θ ATE^(π_θ) = argmax_θ η̂^{π_θ}:

maximising the estimated ATE maximises the estimated long-run average reward (value) of the
target policy. ``optimize_policy`` fits everything that does not depend on π_e once (nuisance
models, Q basis, ratio features: ``fit_policy_free``) and runs ``steps`` optax updates of the
policy parameters inside one jitted ``lax.scan``, recomputing only the policy-dependent stage
(importance weights, the five LSTD fits, the three state ratios, the estimator rows).

Objectives (maximised):
* ``"ate"``: the ``estimator``'s ATE = IDE + IME + DDE + DME (default MR).
* ``"direct"``: IDE + DDE subject to IME + DME ≤ ``bound``, by a quadratic penalty:
  IDE + DDE − (penalty / 2) · max(0, IME + DME − bound)². The penalised optimum violates the
  bound by O(1/penalty) at most when the constraint is active; the violation at the optimum is
  reported and flagged in ``status`` when it exceeds ``constraint_tol``.
* a callable ``f(table, value) -> scalar`` of the ``(7, 5)`` estimate table (NaN on the cells an
  estimator does not define) and the MR value estimate η̂^{π}.
An optional ridge ``l2 / 2 · ‖θ‖²`` on the policy parameters is subtracted.
"""

from __future__ import annotations

import functools
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxmed._src.differentiable.sensitivity import defined_cells
from jaxmed._src.mediation.config import MediationConfig
from jaxmed._src.mediation.effects import (MediationResult, _control_action, _core_jit, _validate)
from jaxmed._src.mediation.estimators import EFFECTS, ESTIMATORS
from jaxmed._src.mediation.nuisance import NuisancePredictions
from jaxmed._src.mediation.pipeline import fit_policy_free, policy_stage
from jaxmed._src.mediation.uncertainty import cluster_se
from jaxmed._src.policies import LogisticPolicy, as_policy
from jaxmed._src.precision import precision
from jaxmed._src.trajectories import Trajectories

__all__ = ["OBJECTIVES", "PolicyOptimisationResult", "optimize_policy", "policy_objective"]

OBJECTIVES = ("ate", "direct")

STATUS_NONFINITE = 1
STATUS_CONSTRAINT = 2
STATUS_PIPELINE = 4

_IDE, _IME, _DDE, _DME, _ATE = range(5)


class PolicyOptimisationResult(NamedTuple):
    """Result of :func:`optimize_policy`.

    Attributes:
      policy: the optimised ``LogisticPolicy``: the iterate with the largest objective on the
        path (start and the ``steps`` updates; usually the last one, but an oscillating or
        overshooting path, e.g. against a stiff penalty, keeps its best point).
      objective_path: ``(steps + 1,)`` objective at the start policy and after each update.
      value_path: ``(steps + 1,)`` MR estimate of the policy value η^{π} along the path.
      objective: objective at the optimum (penalty and ridge included) = max(objective_path).
      value, value_se: MR estimate of η^{π} at the optimum and its trajectory-cluster SE.
      control_value: MR estimate of η^{π_0} (does not depend on the policy).
      direct, mediated: the ``estimator``'s IDE + DDE and IME + DME at the optimum.
      constraint_violation: max(0, mediated − bound) (0 unless ``objective="direct"``).
      grad_norm: Euclidean norm of the objective's gradient at the optimum.
      estimates: ``MediationResult`` at the optimum (the library's SE path, with the nuisances
        fitted once held fixed): ``estimates.to_frame()`` is the table with SEs.
      status: int bit field: 1 non-finite objective or parameters on the path, 2 constraint
        violated by more than ``constraint_tol``, 4 the pipeline's status is non-zero at the
        optimum (``estimates.diagnostics``); 0 = ok.
    """

    policy: LogisticPolicy
    objective_path: np.ndarray
    value_path: np.ndarray
    objective: float
    value: float
    value_se: float
    control_value: float
    direct: float
    mediated: float
    constraint_violation: float
    grad_norm: float
    estimates: MediationResult
    status: int


def _table(w, rows, cells):
    """NaN-safe (7, 5) table from the per-row values (as ``mediation_estimates``)."""
    vals = rows[:, cells[:, 0], cells[:, 1]]
    est = jnp.sum(w[:, None] * vals, axis=0) / jnp.sum(w)
    table = jnp.full((len(ESTIMATORS), len(EFFECTS)), jnp.nan, est.dtype)
    return table.at[cells[:, 0], cells[:, 1]].set(est)


def policy_objective(fit, policy, config, a0: int, objective, estimator: int, bound, penalty, l2):
    """The maximised objective and its parts for one policy (pure; jit/grad-able).

    Args:
      fit: ``PolicyFreeFit`` from ``jaxmed._src.mediation.pipeline.fit_policy_free``.
      policy: a policy pytree (e.g. ``LogisticPolicy``); differentiated by the optimiser.
      config: ``MediationConfig``; a0: control action (static).
      objective: ``"ate"``, ``"direct"`` or ``f(table, value) -> scalar`` (static).
      estimator: row index into ``ESTIMATORS`` (static).
      bound, penalty: constraint IME + DME ≤ bound and its quadratic penalty weight.
      l2: ridge on the policy parameters.

    Returns:
      ``(objective, (value, direct, mediated, violation, pipeline status))`` with value the
      MR estimate of η^{π} and direct = IDE + DDE, mediated = IME + DME of ``estimator``.
    """
    out = policy_stage(fit, policy, a0, config)
    w = fit.w
    total = jnp.sum(w)
    value = jnp.sum(w * out.value_rows[:, 0]) / total
    col = lambda k: jnp.sum(w * out.rows[:, estimator, k]) / total  # noqa: E731
    direct = col(_IDE) + col(_DDE)
    mediated = col(_IME) + col(_DME)
    violation = jnp.maximum(mediated - bound, 0.0)
    if callable(objective):
        cells = defined_cells(config.natural_decomposition)
        obj = objective(_table(w, out.rows, cells), value)
    elif objective == "ate":
        obj = col(_ATE)
    else:
        obj = direct - 0.5 * penalty * violation ** 2
    ridge = sum(jnp.sum(x ** 2) for x in jax.tree_util.tree_leaves(policy))
    obj = obj - 0.5 * l2 * ridge
    return obj, (value, direct, mediated, violation, out.diagnostics.status)


@functools.partial(jax.jit, static_argnames=("a0", "objective", "estimator", "optimizer", "steps"))
def _optimise(fit, policy, config, bound, penalty, l2, *, a0, objective, estimator, optimizer,
              steps):
    import optax

    def neg(p):
        obj, aux = policy_objective(fit, p, config, a0, objective, estimator, bound, penalty, l2)
        return -obj, (obj, aux)

    grad_fn = jax.value_and_grad(neg, has_aux=True)

    def step(carry, _):
        params, opt_state, bad, best, best_obj = carry
        (_, (obj, aux)), g = grad_fn(params)
        improved = obj > best_obj  # NaN never improves
        best = jax.tree_util.tree_map(lambda a, b: jnp.where(improved, a, b), params, best)
        best_obj = jnp.where(improved, obj, best_obj)
        updates, opt_state = optimizer.update(g, opt_state, params)
        new = optax.apply_updates(params, updates)
        finite = jnp.isfinite(obj) & jnp.all(jnp.stack(
            [jnp.all(jnp.isfinite(x)) for x in jax.tree_util.tree_leaves(new)]))
        # a non-finite step is not taken; the flag is kept
        new = jax.tree_util.tree_map(lambda a, b: jnp.where(finite, a, b), new, params)
        return (new, opt_state, bad | ~finite, best, best_obj), (obj, aux[0])

    neg_inf = jnp.asarray(-jnp.inf, policy.weights.dtype)
    init = (policy, optimizer.init(policy), jnp.asarray(False), policy, neg_inf)
    (last, _, bad, best, best_obj), (obj_path, value_path) = jax.lax.scan(step, init, None,
                                                                          length=steps)
    (_, (last_obj, last_aux)), _ = grad_fn(last)
    bad = bad | ~jnp.isfinite(last_obj)
    use_last = last_obj > best_obj
    params = jax.tree_util.tree_map(lambda a, b: jnp.where(use_last, a, b), last, best)
    (_, (obj, aux)), g = grad_fn(params)
    gnorm = jnp.sqrt(sum(jnp.sum(x ** 2) for x in jax.tree_util.tree_leaves(g)))
    out = policy_stage(fit, params, a0, config)
    return (params, jnp.append(obj_path, last_obj), jnp.append(value_path, last_aux[0]), obj, aux,
            gnorm, bad, out.value_rows)


@functools.lru_cache(maxsize=1)
def _default_optimizer():
    import optax

    return optax.adam(0.05)


def _check_inputs(data, policy, objective, steps, estimator, bound, penalty, l2, optimizer,
                  config, constraint_tol):
    if not isinstance(policy, LogisticPolicy):
        raise ValueError(f"policy: expected a jaxmed LogisticPolicy (the optimised class), got "
                         f"{type(policy).__name__}")
    ds = np.shape(data.state)[-1] if isinstance(data, Trajectories) else np.size(policy.weights)
    if np.shape(policy.weights) != (ds,) or np.shape(policy.intercept) != ():
        raise ValueError(f"policy: expected weights of shape ({ds},) and a scalar intercept, got "
                         f"{np.shape(policy.weights)} and {np.shape(policy.intercept)}")
    if not (callable(objective) or objective in OBJECTIVES):
        raise ValueError(f"objective: expected one of {OBJECTIVES} or a callable "
                         f"f(table, value) -> scalar, got {objective!r}")
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 1:
        raise ValueError(f"steps: expected a positive int, got {steps!r}")
    if estimator not in ESTIMATORS:
        raise ValueError(f"estimator: expected one of {ESTIMATORS}, got {estimator!r}")
    if not callable(objective) and estimator not in ("MR", "DM", "MIS1"):
        raise ValueError(f"estimator: {estimator!r} does not estimate DDE/DME/ATE; use MR, DM or MIS1")
    if config.natural_decomposition and not callable(objective) and estimator == "MIS1":
        raise ValueError("estimator: MIS1 is undefined in the natural decomposition; use MR or DM")
    if objective == "direct":
        if bound is None or not np.isfinite(float(bound)):
            raise ValueError(f"bound: objective='direct' needs a finite bound on IME + DME, got {bound!r}")
    elif bound is not None:
        raise ValueError(f"bound: only used with objective='direct', got {bound!r} with {objective!r}")
    if not (np.isfinite(float(penalty)) and float(penalty) > 0):
        raise ValueError(f"penalty: expected a positive finite number, got {penalty!r}")
    if not (np.isfinite(float(l2)) and float(l2) >= 0):
        raise ValueError(f"l2: expected a non-negative finite number, got {l2!r}")
    if not (np.isfinite(float(constraint_tol)) and float(constraint_tol) >= 0):
        raise ValueError(f"constraint_tol: expected a non-negative number, got {constraint_tol!r}")
    if not (hasattr(optimizer, "init") and hasattr(optimizer, "update")):
        raise ValueError(f"optimizer: expected an optax GradientTransformation, got "
                         f"{type(optimizer).__name__}")


def optimize_policy(data: Trajectories, policy: LogisticPolicy, objective: str | Callable = "ate",
                    *, key, steps: int = 200, optimizer=None, config: MediationConfig | None = None,
                    estimator: str = "MR", bound: float | None = None, penalty: float = 100.0,
                    l2: float = 0.0, constraint_tol: float = 1e-2, control_policy=None,
                    nuisances: NuisancePredictions | None = None,
                    dtype=np.float64) -> PolicyOptimisationResult:
    """Maximises an estimated mediation effect over logistic target policies with optax.

    Estimand: the four-way decomposition of spec mediation.md §2 of the target policy π_θ
    against always-a0; ``"ate"`` maximises ATE^ = η̂^{π_θ} − η̂^{π_0}, i.e. the estimated value
    η̂^{π_θ} (the π_0 part does not depend on θ); ``"direct"`` maximises IDE + DDE with
    IME + DME ≤ ``bound`` by the quadratic penalty (penalty / 2)·max(0, IME + DME − bound)².
    Nuisances, the Q basis and the ratio features are fitted once; the ``steps`` optax updates
    run in one jitted ``lax.scan`` (same shapes, same ``optimizer`` object and objective: no
    recompilation).

    Args:
      data: ``Trajectories`` (one dataset).
      policy: the start ``LogisticPolicy`` (e.g. the design's seed target policy).
      objective: ``"ate"``, ``"direct"`` or ``f(table (7, 5), value) -> scalar`` (maximised;
        hashable, e.g. a module-level function, so that repeated calls reuse the compilation).
      key: ``jax.random`` key (as in ``mediation_effects``: ratio features, bootstrap).
      steps: number of optimizer updates (static).
      optimizer: an optax ``GradientTransformation`` (default ``optax.adam(0.05)``); it
        minimises the negated objective.
      config: ``MediationConfig`` (its ``n_boot`` applies to the SEs at the optimum).
      estimator: the row whose effects enter ``"ate"``/``"direct"``: MR (default), DM or MIS1.
      bound: upper bound on IME + DME (``"direct"`` only).
      penalty: weight of the quadratic constraint penalty.
      l2: ridge on the policy parameters, subtracted from the objective.
      constraint_tol: violation above which ``status`` gets bit 2.
      control_policy: always-0 (default) or always-1, as in ``mediation_effects``.
      nuisances: injected ``NuisancePredictions`` (held fixed).
      dtype: float64 (default) or float32.

    Returns:
      ``PolicyOptimisationResult``.

    >>> import jax, jaxmed
    >>> from jaxmed.differentiable import optimize_policy
    >>> from jaxmed._src.sim.semi_synthetic import simulate_semi_synthetic
    >>> data = simulate_semi_synthetic(jax.random.key(0), 40, 10)
    >>> res = optimize_policy(data, jaxmed.policies.semi_synthetic_target_policy(), "ate",
    ...                       key=jax.random.key(1), steps=20)
    >>> bool(res.objective_path[-1] > res.objective_path[0])
    True
    """
    config = MediationConfig() if config is None else config
    if not isinstance(config, MediationConfig):
        raise ValueError(f"config: expected a MediationConfig, got {type(config).__name__}")
    optimizer = _default_optimizer() if optimizer is None else optimizer
    a0 = _control_action(control_policy)
    policy = as_policy(policy, np.shape(data.state)[-1])  # "logistic:0.7" works too
    with precision(dtype) as dt:
        _check_inputs(data, policy, objective, steps, estimator, bound, penalty, l2, optimizer,
                      config, constraint_tol)
        _validate(data, policy, nuisances, dt)
        arrays = Trajectories(*(jnp.asarray(np.asarray(x), dt) for x in data))
        if nuisances is not None:
            nuisances = NuisancePredictions(*(jnp.asarray(np.asarray(x), dt) for x in nuisances))
        start = LogisticPolicy(jnp.asarray(policy.weights, dt), jnp.asarray(policy.intercept, dt))
        k_fit, _ = jax.random.split(key)
        n = arrays.action.shape[0]
        fit = _fit_jit(k_fit, arrays, jnp.ones(n, dt), config, nuisances)
        bound_ = jnp.asarray(np.inf if bound is None else float(bound), dt)
        params, obj_path, value_path, obj, aux, gnorm, bad, value_rows = _optimise(
            fit, start, config, bound_, jnp.asarray(penalty, dt), jnp.asarray(l2, dt),
            a0=a0, objective=objective, estimator=ESTIMATORS.index(estimator),
            optimizer=optimizer, steps=int(steps))
        value_se = float(cluster_se(value_rows[:, 0], arrays.mask))
        w = np.asarray(fit.w)
        control = float(np.sum(w * np.asarray(value_rows[:, 1])) / np.sum(w))
        est = _core_jit(key, arrays, params, a0, config, fit.preds)
        est = jax.tree_util.tree_map(np.asarray, est)
    value, direct, mediated, violation, pipe_status = (np.asarray(x) for x in aux)
    status = (STATUS_NONFINITE * int(bool(bad))
              + STATUS_CONSTRAINT * int(float(violation) > float(constraint_tol))
              + STATUS_PIPELINE * int(int(pipe_status) != 0))
    return PolicyOptimisationResult(
        jax.tree_util.tree_map(np.asarray, params), np.asarray(obj_path), np.asarray(value_path),
        float(obj), float(value), value_se, control, float(direct), float(mediated),
        float(violation), float(gnorm), est, status)


_fit_jit = jax.jit(fit_policy_free)
