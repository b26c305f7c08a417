"""Semi-synthetic design with exogenous drift (``semi-synthetic-drift``; issue 15).

The semi-synthetic dynamics of spec mediation.md §7.1 plus a calendar-time path that is
exogenous (no action, state or trajectory enters it) and shared by every trajectory:

    M1  = sqrt|S_t| + (A* − .5) + σ ε1
    M2  = −0.5 S_t + 0.5 (A* − .5) sqrt|S_t| + σ ε2
    R_t = r(S_t, A_t, M_t) + u_t + σ ε_R                 (r of §7.1)
    S_{t+1} = R_t + z_t

with the path fixed by the strength κ and the window length T (x = t / T, t = 0..T−1):

    z_t = 3 κ (2x − 1 + sin(4πx)),   u_t = 2 κ (2x − 1 + cos(4πx)),

a linear trend over the window plus two seasonal cycles. The path is deterministic (not
drawn): the truth is then a number per (κ, T), not a random variable. κ = 0 gives the
stationary design exactly: the random draws are the same calls in the same order, and
adding u_t = z_t = 0.0 leaves every float unchanged.

Calendar time enters the simulator as a second state coordinate τ = t mod T (the state of
the rollout engine is (S, τ), and the trajectories handed out keep S only). The estimand
(``docs/nonstationary_mediation.md``) is the window average at the periodic steady state:
the long-run per-step averages η1..η5 of the environment whose exogenous path repeats the
window's path with period T, i.e. the stationary estimand of the Markov chain on (S, τ).
"""

from __future__ import annotations

import functools
import json
import os

import jax
import jax.numpy as jnp
import numpy as np

from jaxmed._src.policies import ConstantPolicy
from jaxmed._src.sim import semi_synthetic as ss
from jaxmed._src.sim.rollout import simulate_rollouts
from jaxmed._src.sim.truth import (ChainModel, MediationTruth, chain_means,
                                   truth_from_chain_means)
from jaxmed._src.state_slice_policy import StateSlicePolicy
from jaxmed._src.trajectories import Trajectories

__all__ = ["DRIFT_STRENGTHS", "exogenous_path", "StateSlicePolicy", "drift_transition",
           "drift_initial_state", "drift_expected_reward", "drift_chain_model",
           "simulate_semi_synthetic_drift", "drift_truth", "DRIFT_TRUTHS_PATH", "drift_truth_name",
           "cached_drift_truth"]

# the study's strengths: none, small, large
DRIFT_STRENGTHS = {"none": 0.0, "small": 0.3, "large": 1.0}


def exogenous_path(strength, horizon: int, dtype=np.float64):
    """(z, u) ``(T,)`` each: the exogenous state and reward terms of the module docstring.

    >>> z, u = exogenous_path(1.0, 4)
    >>> (np.round(z, 6) + 0.0).tolist(), (np.round(u, 6) + 0.0).tolist()
    ([-3.0, -1.5, 0.0, 1.5], [0.0, -3.0, 2.0, -1.0])
    """
    horizon = int(horizon)
    if horizon < 1:
        raise ValueError(f"horizon: expected a positive int, got {horizon}")
    x = np.arange(horizon, dtype=np.float64) / horizon
    trend = 2.0 * x - 1.0
    z = 3.0 * float(strength) * (trend + np.sin(4.0 * np.pi * x))
    u = 2.0 * float(strength) * (trend + np.cos(4.0 * np.pi * x))
    return z.astype(dtype), u.astype(dtype)


def drift_initial_state(key, dtype=float):
    """(S_0, τ_0) = (N(0, 1), 0): the same normal draw as ``semi_synthetic_initial_state``."""
    s0 = ss.semi_synthetic_initial_state(key, dtype)
    return jnp.concatenate([s0, jnp.zeros((1,), s0.dtype)])


def _tau(state):
    return jnp.round(state[1]).astype(jnp.int32)


def drift_transition(noise, state, action, mediator_action, params):
    """One step on the augmented state (S, τ); ``params`` = (sigma, z ``(T,)``, u ``(T,)``).

    Returns (M ``(2,)``, R, (S', (τ + 1) mod T)).
    """
    sigma, z, u = params
    tau = _tau(state)
    s = state[:1]
    m = ss.semi_synthetic_mediator_mean(s, mediator_action) + sigma * noise[:2]
    r = ss.semi_synthetic_reward_mean(s, action, m) + u[tau] + sigma * noise[2]
    s_next = r + z[tau]
    tau_next = jnp.mod(tau + 1, z.shape[0]).astype(state.dtype)
    return m, r, jnp.stack([s_next, tau_next])


def drift_expected_reward(state, mediator_action, action, params):
    """E_{m ~ p_m(·|s, a*)} r(s, a, m) + u_τ at the augmented state (S, τ)."""
    sigma, _, u = params
    return (ss.semi_synthetic_expected_reward(state[:1], mediator_action, action, sigma)
            + u[_tau(state)])


def _params(strength, horizon, sigma):
    dtype = jnp.result_type(float)
    z, u = exogenous_path(strength, horizon)
    return (jnp.asarray(sigma, dtype), jnp.asarray(z, dtype), jnp.asarray(u, dtype))


def drift_chain_model(strength, horizon: int, sigma=2.0) -> ChainModel:
    """The ``ChainModel`` of the augmented chain (S, τ) (for ``sim.truth.chain_means``)."""
    return ChainModel(drift_initial_state, ss.semi_synthetic_draw_noise, drift_transition,
                      _params(strength, horizon, sigma), drift_expected_reward)


def simulate_semi_synthetic_drift(key, n: int, horizon: int, *, strength=1.0, sigma=2.0,
                                  policy=None, mediator_policy=None,
                                  period: int | None = None) -> Trajectories:
    """N trajectories of T steps, t = 0..T−1 of the window, under any policy of S.

    Args:
      key: a ``jax.random`` key (the same key gives the same draws as
        ``simulate_semi_synthetic``; at ``strength = 0`` the same data).
      n: number of trajectories (static).
      horizon: T, the window length (static); it also fixes the exogenous path.
      strength: κ, the drift strength (0: the stationary design).
      sigma: σ_M = σ_S.
      policy, mediator_policy: as in ``simulate_semi_synthetic`` (policies of S).
      period: the window length that fixes the exogenous path (default ``horizon``); a
        longer ``horizon`` then repeats the path periodically (the truth's environment).

    Returns:
      ``Trajectories`` with state ``(n, T, 1)``; calendar time is the step index t.

    >>> d0 = simulate_semi_synthetic_drift(jax.random.key(0), 3, 5, strength=0.0)
    >>> d1 = ss.simulate_semi_synthetic(jax.random.key(0), 3, 5)
    >>> bool(jnp.all(d0.state == d1.state) & jnp.all(d0.reward == d1.reward))
    True
    """
    policy = ConstantPolicy(0.5) if policy is None else policy
    wrap = lambda p: None if p is None else StateSlicePolicy(p, 1)  # noqa: E731
    d = simulate_rollouts(key, n, horizon, initial_state=drift_initial_state,
                          draw_noise=ss.semi_synthetic_draw_noise, transition=drift_transition,
                          params=_params(strength, horizon if period is None else period, sigma),
                          policy=wrap(policy),
                          mediator_policy=wrap(mediator_policy))
    return Trajectories(d.state[..., :1], d.action, d.mediator, d.reward, d.next_state[..., :1],
                        d.mask)


@functools.partial(jax.jit, static_argnames=("n_steps", "burn_in", "batch_size"))
def _chain_means_batch(keys, params, policy, *, n_steps, burn_in, batch_size):
    """Chain means ``(chains, 5)``; params and policy traced (one compile per size)."""
    model = ChainModel(drift_initial_state, ss.semi_synthetic_draw_noise, drift_transition,
                       params, drift_expected_reward)
    return jax.lax.map(lambda k: chain_means(k, model, policy, policy, n_steps=n_steps,
                                             burn_in=burn_in), keys, batch_size=batch_size)


def drift_truth(strength, horizon: int, *, key=None, target_policy=None, sigma=2.0,
                n_chains: int = 2000, n_periods: int = 40, burn_in_periods: int = 4,
                batch_size: int = 250):
    """True η1..η5 and IDE, IME, DDE, DME, ATE of the drift design (window average at the
    periodic steady state; ``docs/nonstationary_mediation.md``).

    Long simulation of the three chains π_e, G, π_0 on the augmented state (S, τ), started
    from the same S_0 at τ = 0 and driven by common random numbers, ``burn_in_periods``
    whole periods discarded, then ``n_periods`` whole periods averaged (so every calendar
    time of the window has the same weight 1/T). Inner expectations over a and m are
    noise-free. Chain means are iid: SE = sd / sqrt(chains). At strength 0 this is the
    stationary truth of ``semi-synthetic`` (the same chains and estimand).

    Args:
      strength: κ; horizon: the window length T (the period).
      key: ``jax.random`` key (default ``jax.random.key(20231)``).
      target_policy: π_e of S (default expit(0.7 s)).
      sigma: σ_M = σ_S.
      n_chains, n_periods, burn_in_periods, batch_size: simulation size.

    Returns:
      ``MediationTruth`` (method "simulation").
    """
    from jaxmed._src import policies as P
    from jaxmed._src.precision import precision

    target_policy = P.as_policy(target_policy, 1)  # "logistic:0.7" works too (d_S = 1)
    target = P.semi_synthetic_target_policy() if target_policy is None else target_policy
    key = jax.random.key(20231) if key is None else key
    horizon = int(horizon)
    with precision(np.float64):
        keys = jax.vmap(lambda c: jax.random.fold_in(key, c))(jnp.arange(n_chains))
        means = np.asarray(_chain_means_batch(
            keys, _params(strength, horizon, sigma), StateSlicePolicy(target, 1),
            n_steps=n_periods * horizon, burn_in=burn_in_periods * horizon,
            batch_size=min(batch_size, n_chains)))
    return truth_from_chain_means(means, dict(
        n_chains=n_chains, n_steps=n_periods * horizon, burn_in=burn_in_periods * horizon,
        strength=float(strength), horizon=horizon, sigma=float(sigma),
        estimand="window average at the periodic steady state"))



DRIFT_TRUTHS_PATH = os.path.join(os.path.dirname(__file__), "drift_truths.json")


def drift_truth_name(strength, horizon: int) -> str:
    """Key of a cached truth: ``"strength=1,T=25"``."""
    return f"strength={float(strength):g},T={int(horizon)}"


def cached_drift_truth(strength, horizon: int, path: str = DRIFT_TRUTHS_PATH):
    """The committed truth of (strength, T) (written by ``experiments/drift_truths.py``), or
    a fresh ``drift_truth(strength, horizon)`` (minutes) when it is not cached."""
    name = drift_truth_name(strength, horizon)
    entries = {}
    if os.path.exists(path):
        with open(path) as f:
            entries = json.load(f)
    if name not in entries:
        return drift_truth(strength, horizon)
    e = entries[name]
    return MediationTruth(np.asarray(e["eta"], np.float64), np.asarray(e["eta_se"], np.float64),
                          dict(e["effects"]), dict(e["se"]), e["method"], dict(e["settings"]))
