"""Saturated (tabular) nuisance models for binary states and mediators (spec §3, §7.5).

With binary S, A and M every conditional law is a table over finitely many cells, and
the saturated model — the weighted cell frequency — is the maximum-likelihood fit and is
correctly specified whatever the true law. It is what a classification tree grown to the
full depth on (s, a, m) computes (the original's Toy II trees, §7.5), without the tree's
cross-validated depth choice. Same protocol as ``nuisance_models``:

* ``TabularBehaviourModel``: π̂_b(1 | s) = Σ_k w_k A_k 1{S_k = s} / Σ_k w_k 1{S_k = s};
* ``TabularMediatorModel``: P̂(M_j = 1 | s, a), the weighted frequency per (s, a) cell and
  mediator coordinate (coordinates independent given (s, a); exact for d_M = 1). Its
  ``mean`` is that probability (Bernoulli law, ``mediator_law="bernoulli"``) and ``sd`` is
  sqrt(p(1 − p));
* ``TabularRewardModel``: r̂(s, a, m) = weighted mean of R per (s, a, m) cell;
  ``expected`` sums over the mediator corners exactly (Bernoulli law with the given mean).

A cell without observed rows (weight 0) gets the pooled weighted mean. Cells are numbered
by ``binary_cell_index`` of the concatenated binary coordinates; states and mediators must
be 0/1 (checked at the API boundary by ``mediation_effects``).
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import jax
import jax.numpy as jnp

from jaxmed._src.mediation.binary import bernoulli_expectation, binary_cell_index

__all__ = ["cell_means", "TabularFit", "TabularBehaviourModel", "TabularMediatorModel",
           "TabularRewardModel"]


def cell_means(cells, y, w, n_cells: int):
    """Weighted means of ``y`` ``(n,)`` or ``(n, d)`` per cell; empty cells get the pooled mean.

    Returns ``(means (n_cells, ...), cell weights (n_cells,))``.

    >>> import numpy as np
    >>> m, c = cell_means(jnp.array([0, 0, 1]), jnp.array([1.0, 0.0, 5.0]), jnp.ones(3), 3)
    >>> m.tolist(), c.tolist()
    ([0.5, 5.0, 2.0], [2.0, 1.0, 0.0])
    """
    onehot = jax.nn.one_hot(cells, n_cells, dtype=w.dtype) * w[:, None]  # (n, C)
    counts = jnp.sum(onehot, axis=0)
    sums = jnp.tensordot(onehot, y, axes=(0, 0))  # (C, ...)
    pooled = jnp.tensordot(w, y, axes=(0, 0)) / jnp.sum(w)
    shape = (n_cells,) + (1,) * (sums.ndim - 1)
    safe = jnp.where(counts > 0, counts, 1.0).reshape(shape)
    means = jnp.where(counts.reshape(shape) > 0, sums / safe, pooled)
    return means, counts


class TabularFit(NamedTuple):
    """Cell table ``(cells, ...)`` and the fitted cell weights ``(cells,)``."""

    table: jax.Array
    counts: jax.Array


def _cat(*cols):
    return jnp.concatenate([jnp.reshape(c, (c.shape[0], -1)) for c in cols], axis=1)


def _action(action, n, dtype):
    return jnp.broadcast_to(jnp.asarray(action, dtype), (n,))


@dataclasses.dataclass(frozen=True)
class TabularBehaviourModel:
    """π̂_b(1 | s) = weighted frequency of A = 1 among rows with S = s (binary s)."""

    def fit(self, key, rows, w) -> TabularFit:
        del key
        s = rows["state"]
        return TabularFit(*cell_means(binary_cell_index(s), rows["action"], w, 2 ** s.shape[1]))

    def prob_one(self, params: TabularFit, state):
        return params.table[binary_cell_index(state)]


@dataclasses.dataclass(frozen=True)
class TabularMediatorModel:
    """P̂(M_j = 1 | s, a) = weighted frequency per (s, a) cell (binary s and m)."""

    def fit(self, key, rows, w) -> TabularFit:
        del key
        s = rows["state"]
        cells = binary_cell_index(_cat(s, rows["action"]))
        return TabularFit(*cell_means(cells, rows["mediator"], w, 2 ** (s.shape[1] + 1)))

    def mean(self, params: TabularFit, state, action):
        a = _action(action, state.shape[0], state.dtype)
        return params.table[binary_cell_index(_cat(state, a))]

    def sd(self, params: TabularFit, state, action):
        p = self.mean(params, state, action)
        # sqrt(p(1 − p)), 0 at p ∈ {0, 1} with a zero derivative there (a plain sqrt's infinite
        # one made every reverse pass 0·∞ = NaN, although the Bernoulli law does not use sd)
        q = p * (1.0 - p)
        return jnp.where(q > 0, jnp.sqrt(jnp.where(q > 0, q, 1.0)), 0.0)


@dataclasses.dataclass(frozen=True)
class TabularRewardModel:
    """r̂(s, a, m) = weighted mean of R per (s, a, m) cell (binary s and m)."""

    def fit(self, key, rows, w) -> TabularFit:
        del key
        s, m = rows["state"], rows["mediator"]
        cells = binary_cell_index(_cat(s, rows["action"], m))
        return TabularFit(*cell_means(cells, rows["reward"], w, 2 ** (s.shape[1] + 1 + m.shape[1])))

    def mean(self, params: TabularFit, state, action, mediator):
        a = _action(action, state.shape[0], state.dtype)
        return params.table[binary_cell_index(_cat(state, a, mediator))]

    def expected(self, params: TabularFit, state, action, mean, sd):
        """E_{m ~ Bern(mean)} r̂(s, a, m) (``sd`` unused: the law is Bernoulli)."""
        del sd
        return bernoulli_expectation(lambda m: self.mean(params, state, action, m), mean)


for _cls in (TabularBehaviourModel, TabularMediatorModel, TabularRewardModel):
    jax.tree_util.register_dataclass(_cls, data_fields=[], meta_fields=[])
