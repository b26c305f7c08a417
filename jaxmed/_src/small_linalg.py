"""Small dense solves that run at any ``vmap`` width on CPU (no batched LAPACK call).

What the pipeline calls: ``spd_solve`` (Cholesky) and ``general_solve`` (pivoted LU), at the
end of this module: LAPACK on one system per call, systems of a ``vmap`` batch solved one
after another, derivatives by the same one-system LAPACK solves (``lax.custom_linear_solve``).
The loop solves (``cholesky``, ``cho_solve``, ``solve``) are LAPACK-free references, also
usable directly.

Why. jaxlib 0.10.2 lowers ``cholesky``, ``lu`` and ``triangular_solve`` on CPU to LAPACK
FFI kernels that split a *batched* call over the XLA CPU intra-op thread pool
(``ParallelBatchMap``) and block on it. XLA's thunk executor runs independent thunks on the
same pool, so two batched kernels running concurrently can each hold a pool thread while
waiting for work queued behind the other: ``jax.vmap`` of the mediation pipeline at width 8
on 2 cores hung forever (measured; jax 0.11 compiles that path out). The systems jaxmed
solves are small (p <= ~60 unknowns); plain loops over columns in ``lax.fori_loop``
vectorise under ``vmap`` into ordinary batched XLA ops and call no external kernel, but
cost one XLA dispatch per operation and loop step (measured several times slower than LAPACK
in the whole pipeline; as derivatives they also made the IJ SE's compile slower). They
differentiate with ``grad`` (the loops have static trip counts) and give the LAPACK results up to rounding (~cond × 1e-16; tested against numpy).

The functions are unbatched and take the signatures of their ``jax.scipy.linalg`` /
``jnp.linalg`` namesakes that jaxmed uses: ``cho_factor(a) -> (L, True)``,
``cho_solve((L, lower), b)``, ``solve(a, b)``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

__all__ = ["spd_solve", "general_solve", "tangent_solve", "cholesky", "cho_factor", "cho_solve", "solve",
           "solve_lower", "solve_upper"]


def _vecmat(v, m):
    """``v @ m`` for ``v (p,)``, ``m (p, ...)`` as a fused multiply-and-sum: under ``vmap`` a
    batched matrix-vector ``dot`` becomes one small library call per batch member on CPU,
    measured several times slower here than the elementwise form."""
    return jnp.sum(v.reshape(v.shape + (1,) * (m.ndim - 1)) * m, axis=0)


def cholesky(a):
    """Lower Cholesky factor L (L Lᵀ = a) of a symmetric positive definite ``(p, p)`` matrix.

    One row of Lᵀ per loop step; only the upper triangle of ``a`` is read (``a`` is symmetric). A
    non-positive pivot gives NaN (as LAPACK-backed ``jnp.linalg.cholesky`` does).

    >>> import numpy as np
    >>> a = np.array([[4.0, 2.0], [2.0, 3.0]])
    >>> np.allclose(np.asarray(cholesky(a)), np.linalg.cholesky(a))
    True
    """
    a = jnp.asarray(a)
    p = a.shape[-1]
    rows = jnp.arange(p)

    def row(j, up):
        # U = Lᵀ is built row by row (contiguous updates): U_ji = (a_ji − Σ_{k<j} U_kj U_ki) / U_jj
        # for i >= j; rows >= j of U are still zero, so the sum runs over k < j.
        v = a[j, :] - _vecmat(up[:, j], up)
        d = jnp.sqrt(v[j])
        return up.at[j, :].set(jnp.where(rows >= j, v / d, jnp.zeros_like(v)))

    return jnp.swapaxes(jax.lax.fori_loop(0, p, row, jnp.zeros_like(a)), -1, -2)


def solve_lower(low, b):
    """x with ``low @ x = b`` for lower-triangular ``low`` (forward substitution)."""
    low, b = jnp.asarray(low), jnp.asarray(b)
    p = low.shape[-1]

    def step(i, x):
        return x.at[i].set((b[i] - _vecmat(low[i, :], x)) / low[i, i])

    return jax.lax.fori_loop(0, p, step, jnp.zeros_like(b))


def solve_upper(up, b):
    """x with ``up @ x = b`` for upper-triangular ``up`` (back substitution)."""
    up, b = jnp.asarray(up), jnp.asarray(b)
    p = up.shape[-1]

    def step(k, x):
        i = p - 1 - k
        return x.at[i].set((b[i] - _vecmat(up[i, :], x)) / up[i, i])

    return jax.lax.fori_loop(0, p, step, jnp.zeros_like(b))


def cho_factor(a):
    """``(L, True)``: the lower Cholesky factor, in ``jax.scipy.linalg.cho_factor``'s form."""
    return cholesky(a), True


def cho_solve(c_and_lower, b):
    """x with ``a @ x = b`` from ``cho_factor(a)``; ``b`` is ``(p,)`` or ``(p, r)``."""
    low, lower = c_and_lower
    if not lower:
        low = jnp.swapaxes(low, -1, -2)
    return solve_upper(jnp.swapaxes(low, -1, -2), solve_lower(low, b))


def solve(a, b):
    """x with ``a @ x = b`` for a square ``(p, p)`` ``a``: Gaussian elimination with partial
    pivoting (LAPACK ``getrf``/``getrs``'s algorithm); ``b`` is ``(p,)`` or ``(p, r)``.

    A singular ``a`` gives non-finite values.

    >>> import numpy as np
    >>> a = np.array([[0.0, 2.0], [3.0, 1.0]]); b = np.array([2.0, 5.0])
    >>> np.allclose(np.asarray(solve(a, b)), np.linalg.solve(a, b))
    True
    """
    a, b = jnp.asarray(a), jnp.asarray(b)
    dtype = jnp.result_type(a, b)
    a, b = a.astype(dtype), b.astype(dtype)
    p = a.shape[-1]
    vector = b.ndim == 1
    rhs = b[:, None] if vector else b
    rows = jnp.arange(p)

    def eliminate(k, carry):
        u, y = carry
        piv = jnp.argmax(jnp.where(rows >= k, jnp.abs(u[:, k]), -1.0))
        swap = jnp.where(rows == k, piv, jnp.where(rows == piv, k, rows))
        u, y = u[swap], y[swap]
        factor = jnp.where(rows > k, u[:, k] / u[k, k], jnp.zeros((p,), dtype))
        return u - factor[:, None] * u[k][None, :], y - factor[:, None] * y[k][None, :]

    upper, y = jax.lax.fori_loop(0, p, eliminate, (a, rhs))
    x = solve_upper(upper, y)
    return x[:, 0] if vector else x


# --- what the pipeline calls: LAPACK one system at a time, LAPACK for the derivatives too ---
#
# Measured: the loop solves above cost one XLA dispatch per operation per loop step, which
# made a replication at N=100, T=25 several times slower than LAPACK on a loaded machine.
# The pipeline therefore solves with LAPACK on *one* system per call (the unbatched kernel
# never enters ParallelBatchMap's pool wait; width 1 never hung), and under ``vmap`` the
# systems are solved one after another (a loop of batch-1 LAPACK calls) instead of by one
# batched LAPACK call. ``custom_vmap`` has no reverse-mode rule, so the derivative is given
# by ``custom_jvp``: dx = A⁻¹(db − dA x), where the tangent solve is a
# ``lax.custom_linear_solve`` (linear in the tangent; its transpose solves with Aᵀ), both
# directions by the same one-system LAPACK calls: ``grad``, ``vjp`` over many cotangents
# and ``jacfwd`` all work. (Before issue 13 the tangent solve was the loop solve above, whose
# partial evaluation and transposition made the IJ SE's reverse pass several times dearer.)
# When only the right-hand side is batched (``vmap`` over cotangents or tangents, one A),
# the batch becomes columns of one right-hand side: one factorisation, one LAPACK call.


def _one_system(kernel):
    """``kernel(a, b)`` (one system) under any ``vmap``: an unbatched ``a`` with batched ``b``
    is one call with the batch as extra columns; a batched ``a`` is a loop over the batch."""

    @jax.custom_batching.custom_vmap
    def call(a, b):
        return kernel(a, b)

    @call.def_vmap
    def _rule(axis_size, in_batched, a, b):
        a_batched, b_batched = in_batched
        if not a_batched:  # b batched: (B, p) or (B, p, r) -> (p, B·r)
            cols = jnp.moveaxis(b, 0, -1)
            x = call(a, cols.reshape(cols.shape[0], -1))
            return jnp.moveaxis(x.reshape(cols.shape), -1, 0), True
        if not b_batched:
            b = jnp.broadcast_to(b, (axis_size,) + b.shape)
        return jax.lax.map(lambda ab: call(*ab), (a, b)), True

    return call


def _cho_kernel(a, b):
    from jax.scipy.linalg import cho_factor as _cf, cho_solve as _cs

    return _cs(_cf(a), b)


_lapack_spd_solve = _one_system(_cho_kernel)
_lapack_solve = _one_system(jnp.linalg.solve)
_lapack_solve_t = _one_system(lambda a, b: jnp.linalg.solve(a.T, b))


def tangent_solve(a, rhs, symmetric: bool):
    """A⁻¹ rhs as a linear function of ``rhs`` whose transpose is Aᵀ⁻¹ (LAPACK both ways): the
    solve of a tangent (``jvp`` rules); ``symmetric``: ``a`` is symmetric positive definite."""
    if symmetric:
        return jax.lax.custom_linear_solve(lambda v: a @ v, rhs,
                                           solve=lambda _, r: _lapack_spd_solve(a, r),
                                           symmetric=True)
    return jax.lax.custom_linear_solve(lambda v: a @ v, rhs,
                                       solve=lambda _, r: _lapack_solve(a, r),
                                       transpose_solve=lambda _, r: _lapack_solve_t(a, r))


@jax.custom_jvp
def spd_solve(a, b):
    """x with ``a @ x = b`` for symmetric positive definite ``(p, p)`` ``a`` (Cholesky);
    ``b`` is ``(p,)`` or ``(p, r)``. Any ``vmap`` width; differentiable (forward and reverse).

    >>> import numpy as np
    >>> a = np.array([[4.0, 2.0], [2.0, 3.0]]); b = np.array([1.0, 2.0])
    >>> np.allclose(np.asarray(spd_solve(a, b)), np.linalg.solve(a, b))
    True
    """
    return _lapack_spd_solve(a, b)


@spd_solve.defjvp
def _spd_solve_jvp(primals, tangents):
    a, b = primals
    da, db = tangents
    x = spd_solve(a, b)
    return x, tangent_solve(a, db - da @ x, symmetric=True)


@jax.custom_jvp
def general_solve(a, b):
    """x with ``a @ x = b`` for a square ``(p, p)`` ``a`` (LU with partial pivoting);
    ``b`` is ``(p,)`` or ``(p, r)``. Any ``vmap`` width; differentiable (forward and reverse).

    >>> import numpy as np
    >>> a = np.array([[0.0, 2.0], [3.0, 1.0]]); b = np.array([2.0, 5.0])
    >>> np.allclose(np.asarray(general_solve(a, b)), np.linalg.solve(a, b))
    True
    """
    return _lapack_solve(a, b)


@general_solve.defjvp
def _general_solve_jvp(primals, tangents):
    a, b = primals
    da, db = tangents
    x = general_solve(a, b)
    return x, tangent_solve(a, db - da @ x, symmetric=False)
