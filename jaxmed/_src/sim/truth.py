"""Ground truths of the mediation designs: η1..η5 and IDE, IME, DDE, DME, ATE.

Definitions (spec mediation.md §2): with per-state functions

    f1(s) = Σ_a π_e(a|s) E_{m~p_m(·|s,a)} r(s, a, m)
    f2(s) = Σ_a π_e(a|s) E_{m~p_m(·|s,a)} r(s, a0, m)
    f3(s) = E_{m~p_m(·|s,a0)} r(s, a0, m)

η1 = E_{d^{π_e}} f1, η2 = E_{d^{π_e}} f2, η3 = E_{d^{π_e}} f3, η4 = E_{d^G} f3,
η5 = E_{d^{π_0}} f3, where d^π is the stationary state law under π and G is the mixed
policy (direct action a0, mediator from the π_e mixture, spec §1.2). Effects:
IDE = η1 − η2, IME = η2 − η3, DDE = η3 − η4, DME = η4 − η5, ATE = η1 − η5.

Two routes:
* ``exact_binary_truth``: binary state (Toy designs) — the stationary law of each
  2-state chain in closed form, with exact sums over a, m and s'.
* ``simulated_truth``: long-run simulation of the three state chains (π_e, G, π_0),
  started from the same S_0 and driven by common random numbers, burn-in discarded;
  the inner expectations over a and m are noise-free (design's ``expected_reward``).
  Chains are independent, so chain-level means are iid and the Monte Carlo SE of each
  η and effect is the standard deviation of the chain means / sqrt(chains).
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxmed._src.sim.rollout import draw_actions, trajectory_randomness

__all__ = ["EFFECT_NAMES", "ETA_NAMES", "MediationTruth", "ChainModel", "exact_binary_truth",
           "simulated_truth", "chain_means", "truth_from_chain_means", "state_values"]

ETA_NAMES = ("eta1", "eta2", "eta3", "eta4", "eta5")
EFFECT_NAMES = ("IDE", "IME", "DDE", "DME", "ATE")
# effects = _CONTRAST @ eta
_CONTRAST = np.array([[1, -1, 0, 0, 0], [0, 1, -1, 0, 0], [0, 0, 1, -1, 0], [0, 0, 0, 1, -1],
                      [1, 0, 0, 0, -1]], dtype=np.float64)


class MediationTruth(NamedTuple):
    """True values of a mediation design.

    Attributes:
      eta: ``(5,)`` η1..η5 (spec §2).
      eta_se: ``(5,)`` Monte Carlo SEs of η (0 for exact).
      effects: dict IDE, IME, DDE, DME, ATE -> value.
      se: dict of the effects' Monte Carlo SEs (0 for exact).
      method: "exact" or "simulation".
      settings: what was computed: chains, steps, burn_in, seed / key, policies, ...
    """

    eta: np.ndarray
    eta_se: np.ndarray
    effects: dict
    se: dict
    method: str
    settings: dict

    def effect_array(self) -> np.ndarray:
        """Effects as ``(5,)`` in the order IDE, IME, DDE, DME, ATE."""
        return np.array([self.effects[k] for k in EFFECT_NAMES])

    def se_array(self) -> np.ndarray:
        """SEs as ``(5,)`` in the order IDE, IME, DDE, DME, ATE."""
        return np.array([self.se[k] for k in EFFECT_NAMES])


class ChainModel(NamedTuple):
    """What the truth routes need from a design (all unbatched, jax-traceable).

    Attributes:
      initial_state: ``(key, dtype) -> S_0``.
      draw_noise: ``(key, horizon, dtype) -> (horizon, k)`` step noises.
      transition: ``(noise, s, a, a_med, params) -> (M, R, S')``.
      params: design parameters passed to ``transition`` and ``expected_reward``.
      expected_reward: ``(s, a_med, a, params) -> E_{m~p_m(·|s,a_med)} r(s, a, m)``.
      next_state_prob: binary designs only: ``(s, a_med, a) -> P(S' = 1 | s)`` after
        integrating m ~ p_m(·|s, a_med) with direct action a; None otherwise.
    """

    initial_state: Callable
    draw_noise: Callable
    transition: Callable
    params: object
    expected_reward: Callable
    next_state_prob: Callable | None = None


def state_values(model: ChainModel, state, weight_policy, a0: float = 0.0):
    """(f1(s), f2(s), f3(s)) of the module docstring at one state."""
    dtype = state.dtype
    one, zero = jnp.asarray(1.0, dtype), jnp.asarray(a0, dtype)
    p1 = weight_policy.prob_one(state)
    er = lambda am, a: model.expected_reward(state, am, a, model.params)  # noqa: E731
    er11, er10, er00 = er(one, one), er(one, zero), er(zero, zero)
    # with a0 = 0: Σ_a π_e(a|s) E_{p(s,a)} r(s, a, m) and r(s, a0, m)
    f1 = p1 * er11 + (1.0 - p1) * er00
    f2 = p1 * er10 + (1.0 - p1) * er00
    return f1, f2, er00


def _binary_stationary(p01, p11):
    """P(S = 1) of the 2-state chain with P(1|0) = p01, P(1|1) = p11."""
    return p01 / (p01 + 1.0 - p11)


def exact_binary_truth(model: ChainModel, target_policy, weight_policy=None) -> MediationTruth:
    """Exact truth for a design with binary state (Toy I / II).

    Args:
      model: a ``ChainModel`` with ``next_state_prob``.
      target_policy: π_e used in the chains.
      weight_policy: π_e used in the η weights (default ``target_policy``).

    Returns:
      ``MediationTruth`` with method "exact" and zero SEs.
    """
    weight_policy = target_policy if weight_policy is None else weight_policy
    dtype = jnp.result_type(float)
    states = [jnp.asarray([0.0], dtype), jnp.asarray([1.0], dtype)]
    one, zero = jnp.asarray(1.0, dtype), jnp.asarray(0.0, dtype)
    nsp = model.next_state_prob

    def p_next(s, chain):
        pe = target_policy.prob_one(s)
        if chain == "pie":
            return pe * nsp(s, one, one) + (1.0 - pe) * nsp(s, zero, zero)
        if chain == "G":
            return pe * nsp(s, one, zero) + (1.0 - pe) * nsp(s, zero, zero)
        return nsp(s, zero, zero)

    d1 = {c: float(_binary_stationary(p_next(states[0], c), p_next(states[1], c)))
          for c in ("pie", "G", "pi0")}
    vals = [np.array([float(v) for v in state_values(model, s, weight_policy)]) for s in states]
    f = lambda c, j: (1.0 - d1[c]) * vals[0][j] + d1[c] * vals[1][j]  # noqa: E731
    eta = np.array([f("pie", 0), f("pie", 1), f("pie", 2), f("G", 2), f("pi0", 2)])
    effects = _CONTRAST @ eta
    return MediationTruth(eta, np.zeros(5), dict(zip(EFFECT_NAMES, effects.tolist())),
                          dict.fromkeys(EFFECT_NAMES, 0.0), "exact",
                          {"stationary_p1": d1})


def chain_means(key, model: ChainModel, target_policy, weight_policy, *, n_steps: int,
                burn_in: int):
    """Per-chain time averages ``(5,)`` of (f1, f2, f3)(S^{π_e}), f3(S^G), f3(S^{π_0}).

    The three chains start from the same S_0 and share every uniform and normal draw
    (common random numbers): π_e draws A = 1{U < π_e(S)}; G uses A = 0 and
    A* = 1{U < π_e(S^G)} with the same U; π_0 uses A = A* = 0.
    """
    dtype = jnp.result_type(float)
    s0, u, noise = trajectory_randomness(key, burn_in + n_steps, model.initial_state,
                                         model.draw_noise)
    zero = jnp.asarray(0.0, dtype)

    def advance(states, xs):
        s_e, s_g, s_0 = states
        u_t, e_t = xs
        a_e, _ = draw_actions(u_t, s_e, target_policy, None)
        a_g, _ = draw_actions(u_t, s_g, target_policy, None)
        s_e = model.transition(e_t, s_e, a_e, a_e, model.params)[2]
        s_g = model.transition(e_t, s_g, zero, a_g, model.params)[2]
        s_0 = model.transition(e_t, s_0, zero, zero, model.params)[2]
        return s_e, s_g, s_0

    states = (s0, s0, s0)
    if burn_in > 0:
        states, _ = jax.lax.scan(lambda c, xs: (advance(c, xs), None), states,
                                 (u[:burn_in], noise[:burn_in]))

    def step(carry, xs):
        states, acc = carry
        s_e, s_g, s_0 = states
        f1, f2, f3 = state_values(model, s_e, weight_policy)
        f4 = state_values(model, s_g, weight_policy)[2]
        f5 = state_values(model, s_0, weight_policy)[2]
        acc = acc + jnp.stack([f1, f2, f3, f4, f5])
        return (advance(states, xs), acc), None

    (_, acc), _ = jax.lax.scan(step, (states, jnp.zeros(5, dtype)),
                               (u[burn_in:], noise[burn_in:]))
    return acc / n_steps


def truth_from_chain_means(means, settings: dict) -> MediationTruth:
    """η, effects and their batch-means SEs from ``(chains, 5)`` iid chain means."""
    means = np.asarray(means, dtype=np.float64)
    c = means.shape[0]
    eta = means.mean(axis=0)
    eta_se = means.std(axis=0, ddof=1) / np.sqrt(c)
    eff_chain = means @ _CONTRAST.T
    effects = eff_chain.mean(axis=0)
    se = eff_chain.std(axis=0, ddof=1) / np.sqrt(c)
    return MediationTruth(eta, eta_se, dict(zip(EFFECT_NAMES, effects.tolist())),
                          dict(zip(EFFECT_NAMES, se.tolist())), "simulation", dict(settings))


def simulated_truth(key, model: ChainModel, target_policy, weight_policy=None, *,
                    n_chains: int = 2000, n_steps: int = 2000, burn_in: int = 200,
                    batch_size: int = 250) -> MediationTruth:
    """Long-run simulated truth with noise-free inner expectations (module docstring).

    Args:
      key: a ``jax.random`` key; chain c uses ``fold_in(key, c)``.
      model: the design's ``ChainModel``.
      target_policy: π_e used to roll out the π_e and G chains.
      weight_policy: π_e in the η weights (default ``target_policy``; differs only for
        the multidim bug-B6 variant).
      n_chains, n_steps, burn_in: simulation size (static).
      batch_size: chains per ``lax.map`` batch (memory).

    Returns:
      ``MediationTruth`` with method "simulation" and batch-means SEs.
    """
    weight_policy = target_policy if weight_policy is None else weight_policy
    keys = jax.vmap(lambda c: jax.random.fold_in(key, c))(jnp.arange(n_chains))
    fn = jax.jit(lambda ks: jax.lax.map(
        lambda k: chain_means(k, model, target_policy, weight_policy, n_steps=n_steps,
                              burn_in=burn_in), ks, batch_size=min(batch_size, n_chains)))
    means = np.asarray(fn(keys))
    return truth_from_chain_means(means, dict(n_chains=n_chains, n_steps=n_steps,
                                              burn_in=burn_in))
