"""Policies over a binary action: pytrees with ``prob(action, state)``.

Every policy is unbatched: ``prob_one(state)`` takes one state ``(dS,)`` and returns
P(A = 1 | S = state); ``prob(action, state)`` returns P(A = action | S = state).
``vmap`` over states. Numeric parameters are pytree leaves, so ``grad``/``vmap``
over them work; a user callable is a static field.
"""

from __future__ import annotations

import dataclasses
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp

__all__ = [
    "ConstantPolicy", "LogisticPolicy", "CallablePolicy", "always_control", "always_treat",
    "bernoulli_policy", "semi_synthetic_target_policy", "multidim_target_policy",
    "multidim_truth_target_policy", "toy_target_policy", "behaviour_policy_semi_synthetic",
    "control_policy", "parse_policy", "as_policy",
]


def _prob(p1, action):
    action = jnp.asarray(action, dtype=jnp.result_type(p1))
    return action * p1 + (1.0 - action) * (1.0 - p1)


class ConstantPolicy(NamedTuple):
    """P(A = 1 | s) = ``p1`` for every state (always 0, always 1, Bernoulli p)."""

    p1: jax.Array | float

    def prob_one(self, state):
        del state
        return jnp.asarray(self.p1, dtype=float)

    def prob(self, action, state):
        return _prob(self.prob_one(state), action)


class LogisticPolicy(NamedTuple):
    """P(A = 1 | s) = expit(intercept + weights · s).

    ``weights`` ``(dS,)`` and ``intercept`` are traced leaves, so the policy is
    differentiable in them.
    """

    weights: jax.Array
    intercept: jax.Array | float = 0.0

    def prob_one(self, state):
        state = jnp.asarray(state)
        return jax.nn.sigmoid(self.intercept + jnp.dot(state, self.weights))

    def prob(self, action, state):
        return _prob(self.prob_one(state), action)


@dataclasses.dataclass(frozen=True)
class CallablePolicy:
    """A user function ``fn(state) -> P(A = 1 | state)``, unbatched and jax-traceable.

    ``fn`` is static (part of the tree structure), so two CallablePolicy objects with
    the same function share compiled code.
    """

    fn: Callable

    def prob_one(self, state):
        return jnp.asarray(self.fn(jnp.asarray(state)))

    def prob(self, action, state):
        return _prob(self.prob_one(state), action)


jax.tree_util.register_dataclass(CallablePolicy, data_fields=[], meta_fields=["fn"])


def always_control() -> ConstantPolicy:
    """The control policy π_0: always a0 = 0."""
    return ConstantPolicy(0.0)


control_policy = always_control


def always_treat() -> ConstantPolicy:
    """Always a = 1."""
    return ConstantPolicy(1.0)


def bernoulli_policy(p: float) -> ConstantPolicy:
    """A = 1 with probability ``p`` whatever the state."""
    if not 0.0 <= float(p) <= 1.0:
        raise ValueError(f"p: expected a probability in [0, 1], got {p}")
    return ConstantPolicy(float(p))


def behaviour_policy_semi_synthetic() -> ConstantPolicy:
    """Behaviour policy of every continuous design (spec §7.1): Bernoulli(0.5)."""
    return ConstantPolicy(0.5)


def semi_synthetic_target_policy(scale: float = 0.7) -> LogisticPolicy:
    """Target policy of the semi-synthetic and variance designs: expit(0.7 s) (spec §1.2)."""
    return LogisticPolicy(jnp.asarray([scale]), 0.0)


def multidim_target_policy(dim: int = 2, scale: float = 0.7) -> LogisticPolicy:
    """Target policy used in estimation for the multidim design: expit(0.7 · mean_j s_j)."""
    return LogisticPolicy(jnp.full((dim,), scale / dim), 0.0)


def multidim_truth_target_policy(dim: int = 2, scale: float = 0.7) -> LogisticPolicy:
    """The policy the original's multidim *truth* rollouts used: expit(0.7 · Σ_j s_j) (bug B6)."""
    return LogisticPolicy(jnp.full((dim,), scale), 0.0)


def toy_target_policy() -> LogisticPolicy:
    """Target policy of Toy I and Toy II: expit(1.5 + s)."""
    return LogisticPolicy(jnp.asarray([1.0]), 1.5)


_SPELLING = "constant:p or logistic:w[,w2,...][@b]"


def parse_policy(text: str, state_dim: int):
    """A policy from its text form (the command line's spelling).

    * ``constant:p``: A = 1 with probability p whatever the state;
    * ``logistic:w`` or ``logistic:w1,...,wd`` or ``logistic:w1,...,wd@b``:
      P(A = 1 | s) = expit(b + Σ_j w_j s_j); a single weight is used for every state
      coordinate; the intercept b defaults to 0.

    Args:
      text: the policy's spelling.
      state_dim: the state dimension dS (the number of weights of a logistic policy).

    Returns:
      A ``ConstantPolicy`` or a ``LogisticPolicy``.

    >>> parse_policy("logistic:0.7", 1)
    LogisticPolicy(weights=array([0.7]), intercept=0.0)
    >>> parse_policy("constant:0", 3)
    ConstantPolicy(p1=0.0)
    """
    import numpy as np

    if not isinstance(text, str):
        raise ValueError(f"policy: expected a string ({_SPELLING}), got {type(text).__name__}")
    kind, _, params = text.strip().partition(":")
    try:
        if kind == "constant" and params:
            return bernoulli_policy(float(params))
        if kind == "logistic" and params:
            w_text, _, b_text = params.partition("@")
            weights = [float(v) for v in w_text.split(",")]
            if len(weights) == 1:
                weights = weights * int(state_dim)
            if len(weights) != int(state_dim):
                raise ValueError(f"policy: {text!r} has {len(weights)} weights for {state_dim} "
                                 f"state columns")
            return LogisticPolicy(np.asarray(weights), float(b_text) if b_text else 0.0)
    except ValueError as e:
        if str(e).startswith(("policy:", "p:")):
            raise
        raise ValueError(f"policy: cannot read {text!r} (expected {_SPELLING})") from None
    raise ValueError(f"policy: cannot read {text!r} (expected {_SPELLING})")


def as_policy(policy, state_dim: int):
    """``policy`` itself, or the policy its text spelling names (see ``parse_policy``).

    Lets the Python API take the command line's spelling, e.g.
    ``mediation_effects(data, "logistic:0.7", key=...)``.

    >>> as_policy("constant:1", 1)
    ConstantPolicy(p1=1.0)
    """
    return parse_policy(policy, state_dim) if isinstance(policy, str) else policy
