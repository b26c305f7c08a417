"""How many interior knots the state splines get: a sieve that grows with the sample size.

With ``MediationConfig.state_knots_rule = "rate"`` (default) every state spline of the
stationary pipeline (the Q basis h(s) and the nuisance models' splines) uses

    K = min(state_knots, ⌊n^{1/5}⌋),   n = N · T, the number of rows of the data arrays,

interior knots: the classical rate for cubic regression splines (the number of knots of a
least-squares spline estimate of a twice-differentiable function grows like n^{1/5}), capped
at ``state_knots``. On the semi-synthetic design at N = 100, T = 25 (n = 2,500, K = 4 instead
of 5) the fixed 5 knots gave MR estimates with heavy tails: one replication in 200 had
IDE/IME/DDE errors of −5.9/+3.8/−4.4, its LSTD solution moving with the ridge (η̂1 = 5.4 at
λ_Q = 1e-4, 12.2 at 1e-3, truth ≈ 10) because the outermost B-spline was carried by a few
extreme states (see ``experiments/README.md``, "Small samples"). From n = 3,125 on (5⁵), K is
``state_knots`` and the pipeline is bit-for-bit the fixed-knot one. ``"fixed"`` always uses
``state_knots`` (the behaviour before the rule; ``MediationConfig.parity`` uses it).

The rule reads the static shape of the data, so it is decided at trace time.
"""

from __future__ import annotations

__all__ = ["rate_knots", "resolve_state_knots", "KNOT_RULES"]

KNOT_RULES = ("rate", "fixed")


def rate_knots(n_rows: int, cap: int) -> int:
    """min(cap, ⌊n_rows^{1/5}⌋), computed in integers (the largest K ≤ cap with K⁵ ≤ n_rows).

    >>> [rate_knots(n, 5) for n in (1, 31, 32, 242, 243, 2500, 3124, 3125, 10 ** 6)]
    [1, 1, 2, 2, 3, 4, 4, 5, 5]
    """
    n_rows, cap = int(n_rows), int(cap)
    k = 0
    while k < cap and (k + 1) ** 5 <= n_rows:
        k += 1
    return k


def resolve_state_knots(config, n_rows: int):
    """``config`` with ``state_knots`` set by its ``state_knots_rule`` for ``n_rows`` rows (the
    same object when nothing changes)."""
    if config.state_knots_rule == "fixed":
        return config
    k = rate_knots(n_rows, config.state_knots)
    if k == config.state_knots:
        return config
    return config.replace(state_knots=k, state_knots_rule="fixed")
