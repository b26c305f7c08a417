"""The six temporal differences of ``q_temporal_differences`` against plain float64 numpy (spec §4.4).

Random feature blocks and coefficients, called eagerly (no fits), for both control actions
a0 = 0 and a0 = 1 and both decompositions. The reference builds the action-coded features
u(F, a) = [(1 − a) F, a F, a] as explicit matrices and takes their products with β_k, as the
spec writes Q_k(s, m, a) = u(s, m, a)ᵀ β_k:

* Δ1 = Σ_a π_e(a|S') u(Ē'_a φ, a)ᵀβ_1 − u(Ē_A φ, A)ᵀβ_1;
* Δ2, Δ3: the same with β_2, β_3 (natural: the next-state value under π_0, u(Ē'_{a0} φ, a0));
* Δ5 = u(Ē'_{a0} φ, a0)ᵀβ_5 − u(Ē_A φ, A)ᵀβ_5;
* Δ4a = V_4^G(S') − u(φ, A)ᵀβ_4 with V_4^G = u(π_e' Ē'_1 φ + (1 − π_e') Ē'_0 φ, a0)ᵀβ_4
  (natural: Σ_a π_e(a|S') u(Ē'_{a0} φ, a)ᵀβ_4);
* Δ4b = Σ_a π(a|S) [u(φ, a) − u(Ē_A φ, a)]ᵀβ_4 with π = π_0 (natural: π_e).
"""

import itertools

import numpy as np
import pytest

from jaxmed._src.mediation.q_function import QFeatures, q_temporal_differences

N, P = 30, 4


def _u(f, act):
    """u(F, a) = [(1 − a) F, a F, a] per row: ``(n, 2p + 1)``."""
    act = np.broadcast_to(np.asarray(act, np.float64), f.shape[:1])[:, None]
    return np.concatenate([(1 - act) * f, act * f, act], axis=1)


def _reference(a, phi, ephi, ephi_next, beta, pe_s, pe_next, a0, natural):
    b = beta[:, :-1]                                        # η (the last entry) is not used
    q = lambda f, act, k: _u(f, act) @ b[k]                 # noqa: E731
    e_a = a[:, None] * ephi[:, 1] + (1 - a[:, None]) * ephi[:, 0]   # Ē_A φ
    v_pe = lambda k: pe_next * q(ephi_next[:, 1], 1.0, k) + (1 - pe_next) * q(ephi_next[:, 0], 0.0, k)  # noqa: E731
    v_p0 = lambda k: q(ephi_next[:, a0], float(a0), k)     # noqa: E731
    v_23 = v_p0 if natural else v_pe
    if natural:
        v_g = (1 - pe_next) * q(ephi_next[:, a0], 0.0, 3) + pe_next * q(ephi_next[:, a0], 1.0, 3)
        direct = [(1 - pe_s, 0.0), (pe_s, 1.0)]
    else:
        mix = pe_next[:, None] * ephi_next[:, 1] + (1 - pe_next[:, None]) * ephi_next[:, 0]
        v_g = q(mix, float(a0), 3)
        direct = [(np.ones(len(a)), float(a0))]
    d1 = v_pe(0) - q(e_a, a, 0)
    d2 = v_23(1) - q(e_a, a, 1)
    d3 = v_23(2) - q(e_a, a, 2)
    d5 = v_p0(4) - q(e_a, a, 4)
    d4a = v_g - q(phi, a, 3)
    d4b = sum(prob * (q(phi, act, 3) - q(e_a, act, 3)) for prob, act in direct)
    return np.stack([d1, d2, d3, d4a, d4b, d5], axis=1)


@pytest.mark.parametrize("a0,natural", list(itertools.product([0, 1], [False, True])))
def test_q_temporal_differences_match_numpy(a0, natural):
    rng = np.random.default_rng(11 + 2 * a0 + natural)
    a = (rng.random(N) < 0.5).astype(np.float64)
    phi = rng.normal(size=(N, P))
    ephi, ephi_next = rng.normal(size=(N, 2, P)), rng.normal(size=(N, 2, P))
    beta = rng.normal(size=(5, 2 * P + 2))
    pe_s, pe_next = rng.uniform(0.1, 0.9, size=N), rng.uniform(0.1, 0.9, size=N)
    got = np.asarray(q_temporal_differences(a, QFeatures.from_rows(phi, ephi, ephi_next), beta, pe_s, pe_next,
                                            a0, natural=natural))
    want = _reference(a, phi, ephi, ephi_next, beta, pe_s, pe_next, a0, natural)
    assert got.shape == (N, 6)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
