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
    "control_policy",
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
