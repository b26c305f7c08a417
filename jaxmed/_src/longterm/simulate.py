"""Synthetic A/B panels: designs S1 (stationary) and S2 (shared exogenous path), spec
longterm.md §6.2, and a dimension-sweep generator with random stable dynamics.

Endogenous state, per individual j in bucket D_j ~ Bernoulli(p_treat):

    s_{j,0} ~ N(init_mean, init_cov),  s_{j,t+1} = M_{D_j} s_{j,t} + b_{D_j} + σ ε,  ε ~ N(0, I)
    o_{j,t} = s_{j,t} + z_t          (z ≡ 0 for S1; the S2 path below otherwise)

S1/S2 (d = 3): M_0 = [[.9, .05, 0], [0, .7, .1], [0, 0, .5]], M_1 = M_0 with M_1[0,0] = .88,
b_0 = [.1, .2, .5], b_1 = [.1, .2, .58], θ_r = [1, 0, 1], c_r = 0, σ = 0.1, s_0 from the
control steady state N(μ_0, Σ_∞) with Σ_∞ = M_0 Σ_∞ M_0ᵀ + σ² I.
S2: z_t = a sin(2πt/7) + κ t/28 + h 1{9 ≤ t ≤ 11}, a = [.3, .2, .1], κ = [.2, 0, .1],
h = [.5, .3, 0].
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxmed._src.longterm.panel import Panel

__all__ = ["LongtermParams", "design_params", "s2_exogenous", "steady_state_cov",
           "simulate_longterm", "random_stable_params", "random_exogenous",
           "simulate_surrogate_data", "DESIGNS"]

DESIGNS = ("s1", "s2")


class LongtermParams(NamedTuple):
    """Parameters of a linear two-arm design.

    Attributes:
      M: ``(2, d, d)`` transition matrices; b: ``(2, d)`` intercepts.
      theta: ``(d,)`` reward coefficients; c: reward constant.
      sigma: transition noise standard deviation.
      init_mean: ``(d,)`` E[s_0]; init_cov: ``(d, d)`` Cov[s_0].
    """

    M: object
    b: object
    theta: object
    c: object
    sigma: object
    init_mean: object
    init_cov: object


def steady_state_cov(M, sigma):
    """Σ solving Σ = M Σ Mᵀ + σ² I (vec form (I − M⊗M)^{-1} vec(σ² I))."""
    d = M.shape[-1]
    vec = jnp.linalg.solve(jnp.eye(d * d, dtype=M.dtype) - jnp.kron(M, M),
                           (sigma ** 2 * jnp.eye(d, dtype=M.dtype)).reshape(-1))
    cov = vec.reshape(d, d)
    return 0.5 * (cov + cov.T)


def design_params(design: str = "s2", dtype=None) -> LongtermParams:
    """Exact parameters of S1/S2 (they share the endogenous part, spec §6.2).

    >>> p = design_params("s1")
    >>> [round(float(v), 6) for v in p.init_mean]
    [1.5, 1.0, 1.0]
    """
    if design not in DESIGNS:
        raise ValueError(f"design: expected one of {DESIGNS}, got {design!r}")
    dtype = dtype or jnp.result_type(float)
    M0 = jnp.array([[0.90, 0.05, 0.00], [0.00, 0.70, 0.10], [0.00, 0.00, 0.50]], dtype)
    M1 = M0.at[0, 0].set(0.88)
    b = jnp.array([[0.10, 0.20, 0.50], [0.10, 0.20, 0.58]], dtype)
    sigma = jnp.asarray(0.1, dtype)
    mu0 = jnp.linalg.solve(jnp.eye(3, dtype=dtype) - M0, b[0])
    return LongtermParams(jnp.stack([M0, M1]), b, jnp.array([1.0, 0.0, 1.0], dtype),
                          jnp.asarray(0.0, dtype), sigma, mu0, steady_state_cov(M0, sigma))


def s2_exogenous(horizon: int, dtype=None):
    """The S2 exogenous path z_t for t = 0..horizon, ``(horizon + 1, 3)``; z_0 = 0."""
    dtype = dtype or jnp.result_type(float)
    t = jnp.arange(horizon + 1, dtype=dtype)[:, None]
    a = jnp.array([0.30, 0.20, 0.10], dtype)
    kappa = jnp.array([0.20, 0.00, 0.10], dtype)
    h = jnp.array([0.50, 0.30, 0.00], dtype)
    holiday = ((t >= 9) & (t <= 11)).astype(dtype)
    return a * jnp.sin(2.0 * jnp.pi * t / 7.0) + kappa * t / 28.0 + h * holiday


def simulate_longterm(key, n: int, horizon: int, *, design: str = "s2",
                      params: LongtermParams | None = None, exogenous=None, p_treat=0.5,
                      reward_noise=None) -> Panel:
    """Simulates one A/B panel of n individuals over t = 0..horizon.

    Args:
      key: a ``jax.random`` key.
      n: number of individuals (static); horizon: T, number of transitions (static).
      design: ``"s1"`` or ``"s2"`` (spec §6.2); used for the defaults of ``params`` and
        ``exogenous``.
      params: a ``LongtermParams`` (default ``design_params(design)``).
      exogenous: ``(horizon + 1, d)`` exogenous path z (default: zeros for ``"s1"``,
        ``s2_exogenous`` for ``"s2"``).
      p_treat: P(D = 1) (traced).
      reward_noise: if given (traced), the panel carries observed rewards
        R = θᵀ o + c + reward_noise · N(0, 1); otherwise ``rewards`` is None.

    Returns:
      A ``Panel`` with obs ``(n, horizon + 1, d)``.

    >>> import jax
    >>> p = simulate_longterm(jax.random.key(0), 4, 7, design="s2")
    >>> p.obs.shape, p.bucket.shape
    ((4, 8, 3), (4,))
    """
    if design not in DESIGNS:
        raise ValueError(f"design: expected one of {DESIGNS}, got {design!r}")
    params = design_params(design) if params is None else params
    M, b = jnp.asarray(params.M), jnp.asarray(params.b)
    d = M.shape[-1]
    dtype = M.dtype
    if exogenous is None:
        exogenous = (s2_exogenous(horizon, dtype) if design == "s2"
                     else jnp.zeros((horizon + 1, d), dtype))
    kd, k0, ke, kr = jax.random.split(key, 4)
    bucket = jax.random.bernoulli(kd, p_treat, (n,)).astype(dtype)
    chol = jnp.linalg.cholesky(jnp.asarray(params.init_cov, dtype))
    s0 = params.init_mean + jax.random.normal(k0, (n, d), dtype) @ chol.T
    idx = bucket.astype(jnp.int32)
    Mj, bj = M[idx], b[idx]

    def step(s, eps):
        s_next = jnp.einsum("jab,jb->ja", Mj, s) + bj + params.sigma * eps
        return s_next, s_next

    eps = jax.random.normal(ke, (horizon, n, d), dtype)
    _, path = jax.lax.scan(step, s0, eps)
    s = jnp.concatenate([s0[None], path], axis=0).transpose(1, 0, 2)          # (n, T+1, d)
    obs = s + exogenous[None]
    rewards = None
    if reward_noise is not None:
        rewards = obs @ params.theta + params.c + reward_noise * jax.random.normal(
            kr, obs.shape[:2], dtype)
    return Panel(obs, bucket, jnp.ones(obs.shape[:2], dtype), rewards)


def random_stable_params(key, d: int, *, eig_low=0.3, eig_high=0.95, sigma=0.1,
                         persistence_effect=0.03, intercept_effect=0.05) -> LongtermParams:
    """Random stable design for the dimension sweep (spec §6.2).

    M_0 = Q diag(λ) Qᵀ with Q a random orthogonal matrix and λ ~ U[eig_low, eig_high];
    M_1 = Q diag(λ') Qᵀ with λ' = clip(λ − persistence_effect · U, eig_low, eig_high),
    b_0 ~ 0.2 N(0, I) + 0.2, b_1 = b_0 + intercept_effect · N(0, I), θ ~ N(0, I/d), c = 0;
    s_0 from the control steady state. All eigenvalues lie in [eig_low, eig_high].
    """
    dtype = jnp.result_type(float)
    kq, kl, ku, kb, kb1, kt = jax.random.split(key, 6)
    q, r = jnp.linalg.qr(jax.random.normal(kq, (d, d), dtype))
    q = q * jnp.sign(jnp.diag(r))
    lam0 = jax.random.uniform(kl, (d,), dtype, eig_low, eig_high)
    lam1 = jnp.clip(lam0 - persistence_effect * jax.random.uniform(ku, (d,), dtype), eig_low, eig_high)
    M0 = (q * lam0) @ q.T
    M1 = (q * lam1) @ q.T
    b0 = 0.2 + 0.2 * jax.random.normal(kb, (d,), dtype)
    b1 = b0 + intercept_effect * jax.random.normal(kb1, (d,), dtype)
    theta = jax.random.normal(kt, (d,), dtype) / jnp.sqrt(d)
    sigma = jnp.asarray(sigma, dtype)
    mu0 = jnp.linalg.solve(jnp.eye(d, dtype=dtype) - M0, b0)
    return LongtermParams(jnp.stack([M0, M1]), jnp.stack([b0, b1]), theta, jnp.asarray(0.0, dtype),
                          sigma, mu0, steady_state_cov(M0, sigma))


def random_exogenous(key, horizon: int, d: int, *, amplitude=0.3, trend=0.2):
    """Random S2-like exogenous path: weekly sine with amplitudes U[0, amplitude] and a
    linear trend U[0, trend] per 28 steps, with random phase-free start z_0 = 0. ``(horizon+1, d)``."""
    dtype = jnp.result_type(float)
    ka, kk = jax.random.split(key)
    t = jnp.arange(horizon + 1, dtype=dtype)[:, None]
    a = jax.random.uniform(ka, (d,), dtype, 0.0, amplitude)
    kappa = jax.random.uniform(kk, (d,), dtype, 0.0, trend)
    return a * jnp.sin(2.0 * jnp.pi * t / 7.0) + kappa * t / 28.0


def simulate_surrogate_data(key, m: int, horizon_long: int, *, design: str = "s2",
                            params: LongtermParams | None = None, exogenous=None) -> Panel:
    """Auxiliary ("historical") data for the surrogate index (baseline B4, spec §5): m
    individuals all under control, observed for t = 0..horizon_long (long). The returned
    ``Panel`` has bucket ≡ 0 and is not an A/B panel; pass it to ``fit_surrogate_index``.
    """
    if design not in DESIGNS:
        raise ValueError(f"design: expected one of {DESIGNS}, got {design!r}")
    return simulate_longterm(key, m, horizon_long, design=design, params=params,
                             exogenous=exogenous, p_treat=0.0)
