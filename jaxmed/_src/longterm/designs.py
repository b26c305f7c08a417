"""Long-term designs S1 and S2 (spec longterm.md §6.2) in the shared design registry.

A ``LongtermDesign`` is a ``Design`` whose ``simulate(key, n, horizon)`` returns a
``Panel`` and whose ``truth()`` gives the three long-term effects (``delta`` = the seed's
unnormalised discounted Δ, ``delta_gamma`` = (1−γ)Δ, ``avg_reward`` = ρ_1 − ρ_0) in closed
form. Designs describe data only: the study engine's default estimator for them lives with
the long-term estimators (``jaxmed._src.longterm.design_estimators``).
"""

from __future__ import annotations

import dataclasses
import functools

import jax

from jaxmed._src.longterm.reward import LinearReward
from jaxmed._src.longterm.simulate import design_params, simulate_longterm
from jaxmed._src.longterm.truth import longterm_truth
from jaxmed._src.policies import always_control, always_treat, bernoulli_policy
from jaxmed._src.sim.design import Design

__all__ = ["LongtermDesign", "LongtermTruth", "longterm_design"]

GAMMA = 0.99


@dataclasses.dataclass(frozen=True)
class LongtermTruth:
    """True long-term effects of a design (closed form; ``se`` are 0)."""

    effects: dict
    se: dict
    method: str = "exact"


@dataclasses.dataclass(frozen=True)
class LongtermDesign(Design):
    """A long-term A/B design: ``simulate`` gives a ``Panel``; ``gamma`` is the discount."""

    gamma: float = GAMMA

    @property
    def reward(self) -> LinearReward:
        """The design's reward metric r_t = θᵀ s_t + c."""
        params = design_params(self.name.rsplit("-", 1)[-1])
        return LinearReward(params.theta, params.c)


def _truth(which: str, gamma: float) -> LongtermTruth:
    with jax.enable_x64(True):
        values = longterm_truth(design_params(which), gamma)
        effects = {"delta": float(values.delta), "delta_gamma": float(values.delta_gamma),
                   "avg_reward": float(values.avg_reward)}
    return LongtermTruth(effects, {k: 0.0 for k in effects})


def longterm_design(which: str) -> LongtermDesign:
    """The ``longterm-s1`` or ``longterm-s2`` design (``which`` in {"s1", "s2"})."""
    if which not in ("s1", "s2"):
        raise ValueError(f"which: expected 's1' or 's2', got {which!r}")
    description = {"s1": "Long-term S1: stationary linear A/B panel, d = 3 (longterm spec §6.2)",
                   "s2": "Long-term S2: S1 plus an exogenous path shared by both buckets (§6.2)"}
    return LongtermDesign(
        name=f"longterm-{which}", kind="longterm", state_dim=3, mediator_dim=0,
        simulate=functools.partial(_simulate, design=which),
        target_policy=always_treat(), control_policy=always_control(),
        behaviour_policy=bernoulli_policy(0.5),
        truth=functools.partial(_truth, which, GAMMA), default_horizon=28,
        description=description[which])


def _simulate(key, n, horizon, *, design):
    return simulate_longterm(key, n, horizon, design=design)


def all_longterm_designs() -> list[LongtermDesign]:
    return [longterm_design("s1"), longterm_design("s2")]


