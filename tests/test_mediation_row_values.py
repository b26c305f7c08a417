"""ρ, κ and the per-row values of every §6 estimator against plain float64 numpy (spec §3.4, §6).

``row_importance_weights`` and ``estimator_rows`` are called directly on random inputs (no
nuisance fits, no Q or ratio solves), for every branch: Gaussian and Bernoulli mediator laws,
clipped and unclipped densities (the ``clip_densities`` branch is what
``MediationConfig.parity()`` uses), the natural decomposition, a soft clip, and both control
actions a0 = 0 and a0 = 1. The references below are written from the spec's formulas.
"""

import itertools

import jax.numpy as jnp
import numpy as np
import pytest

from jaxmed._src.mediation.estimators import EFFECTS, ESTIMATORS, RowWeights, estimator_rows, row_importance_weights
from jaxmed._src.mediation.nuisance import NuisancePredictions

N, DM = 40, 2


def _inputs(seed, law):
    rng = np.random.default_rng(seed)
    a = (rng.random(N) < 0.45).astype(np.float64)
    if law == "bernoulli":
        m = (rng.random((N, DM)) < 0.5).astype(np.float64)
        mean = rng.uniform(0.05, 0.95, size=(N, 2, DM))
    else:
        # small SDs give densities above 0.9999, far mediators densities below 1e-6: both clips bite
        m = rng.normal(size=(N, DM)) * 1.5
        mean = rng.normal(size=(N, 2, DM))
    sd = rng.uniform(0.2, 1.5, size=(N, 2, DM))
    pb = rng.uniform(-0.05, 1.05, size=N)  # outside [1e-6, 0.9999] on purpose: the clip applies
    preds = NuisancePredictions(
        behaviour_prob=pb, mediator_mean=mean, mediator_sd=sd,
        mediator_mean_next=mean[::-1], mediator_sd_next=sd[::-1],
        reward_at_mediator=rng.normal(size=(N, 2)), reward_expected=rng.normal(size=(N, 2, 2)))
    pe = rng.uniform(0.1, 0.9, size=N)
    return dict(action=a, mediator=m), preds, pe


def _np_weights(rows, preds, pe, a0, trunc, clip, natural, law, tau):
    a, m = rows["action"], rows["mediator"]
    pb = np.clip(preds.behaviour_prob, 1e-6, 0.9999)
    ke = np.where(a == 1, pe, 1 - pe) / pb
    k0 = (a == a0).astype(np.float64) / pb
    dens = np.empty((N, 2))
    for b in (0, 1):
        mu, sd = preds.mediator_mean[:, b], preds.mediator_sd[:, b]
        if law == "bernoulli":
            dens[:, b] = np.prod(np.where(m == 1, mu, 1 - mu), axis=1)
        else:
            dens[:, b] = np.prod(np.exp(-0.5 * ((m - mu) / sd) ** 2) / (np.sqrt(2 * np.pi) * sd), axis=1)
    if clip:
        dens = np.clip(dens, 1e-6, 0.9999)
    d_taken = np.where(a == 1, dens[:, 1], dens[:, 0])
    if natural:
        rho = dens[:, a0] / d_taken
    else:
        rho = ((1 - pe) * dens[:, 0] + pe * dens[:, 1]) / d_taken
    if tau == 0:
        rhot = np.minimum(rho, trunc)
    else:
        scale = tau * trunc
        rhot = trunc - scale * np.logaddexp(0.0, (trunc - rho) / scale)
    return ke, k0, rho, rhot


CASES = [c for c in itertools.product(("gaussian", "bernoulli"), (False, True), (False, True), (0, 1))]


@pytest.mark.parametrize("law,clip,natural,a0", CASES)
def test_row_importance_weights_match_numpy(law, clip, natural, a0):
    rows, preds, pe = _inputs(1 + a0, law)
    got = row_importance_weights({k: jnp.asarray(v) for k, v in rows.items()},
                                 NuisancePredictions(*(jnp.asarray(x) for x in preds)),
                                 jnp.asarray(pe), a0, 2.5, clip_densities=clip, natural=natural,
                                 mediator_law=law)
    ref = _np_weights(rows, preds, pe, a0, 2.5, clip, natural, law, 0.0)
    for name, g, r in zip(RowWeights._fields, got, ref):
        np.testing.assert_allclose(np.asarray(g), r, rtol=1e-12, atol=0, err_msg=name)
    # the inputs make the clips matter: some ρ above the truncation, some densities clipped
    assert (ref[2] > 2.5).any() and (ref[2] < 2.5).any()


def test_clip_densities_changes_rho_on_these_inputs():
    """Guards the test above: clipped and unclipped ρ differ here (so the clip branch is seen)."""
    rows, preds, pe = _inputs(1, "gaussian")
    clipped = _np_weights(rows, preds, pe, 0, 2.5, True, False, "gaussian", 0.0)[2]
    plain = _np_weights(rows, preds, pe, 0, 2.5, False, False, "gaussian", 0.0)[2]
    assert np.abs(clipped - plain).max() > 1e-3


def test_soft_clip_of_rho_matches_numpy():
    rows, preds, pe = _inputs(4, "gaussian")
    got = row_importance_weights({k: jnp.asarray(v) for k, v in rows.items()},
                                 NuisancePredictions(*(jnp.asarray(x) for x in preds)),
                                 jnp.asarray(pe), 0, 2.5, soft_clip=0.1)
    ref = _np_weights(rows, preds, pe, 0, 2.5, False, False, "gaussian", 0.1)
    np.testing.assert_allclose(np.asarray(got.rho_tilde), ref[3], rtol=1e-12)
    assert np.abs(ref[3] - np.minimum(ref[2], 2.5)).max() > 1e-3  # soft differs from hard here


def _np_rows(r, a, preds, pe, a0, iw, ratios, eta, delta, natural):
    """The spec §6 per-row values, (n, 7, 5), NaN where an estimator leaves an effect undefined."""
    ke, k0, rho, rhot = iw
    we, wg, w0 = ratios.T
    d1, d2, d3, d4a, d4b, d5 = delta.T
    ER, RM = preds.reward_expected, preds.reward_at_mediator
    r_hat = np.where(a == 1, RM[:, 1], RM[:, 0])
    e_a = np.where(a == 1, ER[:, 1, 1], ER[:, 0, 0])
    out = np.full((N, 7, 5), np.nan)

    def put(i, cols):
        cols = list(cols)
        out[:, i, :len(cols)] = np.stack(cols, 1)
        if len(cols) == 4:
            out[:, i, 4] = sum(cols)

    E_am = (1 - pe) * ER[:, 0, 0] + pe * ER[:, 1, 1]
    if not natural:
        E_0 = ER[:, a0, a0]
        RM0 = RM[:, a0]
        I1 = we * ke * (r + d1 - eta[0])
        I2 = we * k0 * rhot * (r - r_hat) + we * ke * (RM0 + d2 - eta[1])
        I3 = we * k0 * (r - e_a) + we * ke * (E_0 + d3 - eta[2])
        I4 = wg * k0 * (r - e_a + rho * (E_0 + d4a - eta[3])) + wg * ke * d4b
        I5 = w0 * k0 * (r + d5 - eta[4])
        put(0, [eta[0] - eta[1] + I1 - I2, eta[1] - eta[2] + I2 - I3, eta[2] - eta[3] + I3 - I4,
                eta[3] - eta[4] + I4 - I5])
        put(1, [np.full(N, eta[j] - eta[j + 1]) for j in range(4)])
        W1, W2, W3, W4, W5 = we * ke * r, we * k0 * rhot * r, we * k0 * r, wg * k0 * r, w0 * k0 * r
        put(2, [W1 - W2, W2 - W3, W3 - W4, W4 - W5])
        W2p = we * ke * RM0
        put(3, [W1 - W2p, W2p - W3])
        E_G = (1 - pe) * ER[:, a0, 0] + pe * ER[:, a0, 1]
        E_AG = np.where(a == 1, ER[:, a0, 1], ER[:, a0, 0])
        put(4, [E_am - E_G, E_G - E_0])
        put(5, [ke * r - k0 * rhot * r, k0 * rhot * r - k0 * r])
        J1, J2, J3, J4 = ke * (r - e_a), k0 * rhot * (r - r_hat), ke * (RM0 - E_AG), k0 * (r - e_a)
        put(6, [J1 + E_am - J2 - J3 - E_G, J2 + J3 + E_G - J4 - E_0])
    else:
        Y2 = (1 - pe) * RM[:, 0] + pe * RM[:, 1]
        I1 = we * ke * (r + d1 - eta[0])
        I2 = w0 * ke * rhot * (r - r_hat) + w0 * k0 * (Y2 + d2 - eta[1])
        I3 = w0 * ke * (r - e_a) + w0 * k0 * (E_am + d3 - eta[2])
        I4 = wg * ke * (r - e_a + rho * (E_am + d4a - eta[3])) + wg * k0 * d4b
        I5 = w0 * k0 * (r + d5 - eta[4])
        put(0, [eta[1] - eta[4] + I2 - I5, eta[2] - eta[1] + I3 - I2, eta[3] - eta[2] + I4 - I3,
                eta[0] - eta[3] + I1 - I4])
        put(1, [np.full(N, eta[1] - eta[4]), np.full(N, eta[2] - eta[1]),
                np.full(N, eta[3] - eta[2]), np.full(N, eta[0] - eta[3])])
    return out


@pytest.mark.parametrize("natural,a0", [(False, 0), (False, 1), (True, 0)])
def test_estimator_rows_match_numpy(natural, a0):
    rows, preds, pe = _inputs(7 + a0, "gaussian")
    rng = np.random.default_rng(11 + a0)
    r = rng.normal(size=N)
    iw = tuple(rng.uniform(0.2, 3.0, size=(4, N)))
    ratios = rng.uniform(0.3, 2.0, size=(N, 3))
    eta = rng.normal(size=5)
    delta = rng.normal(size=(N, 6))
    jrows = dict(reward=jnp.asarray(r), action=jnp.asarray(rows["action"]))
    got = estimator_rows(jrows, NuisancePredictions(*(jnp.asarray(x) for x in preds)),
                         jnp.asarray(pe), a0, RowWeights(*(jnp.asarray(x) for x in iw)),
                         jnp.asarray(ratios), jnp.asarray(eta), jnp.asarray(delta),
                         **({"natural": True} if natural else {}))  # the default is the §6 one
    ref = _np_rows(r, rows["action"], preds, pe, a0, iw, ratios, eta, delta, natural)
    got = np.asarray(got)
    assert got.shape == (N, len(ESTIMATORS), len(EFFECTS))
    for i, name in enumerate(ESTIMATORS):
        np.testing.assert_array_equal(np.isnan(got[:, i]), np.isnan(ref[:, i]), err_msg=name)
        np.testing.assert_allclose(got[:, i], ref[:, i], rtol=1e-12, atol=1e-12, err_msg=name)


@pytest.mark.parametrize("natural", [False, True])
def test_estimator_rows_keep_float32(natural):
    """float32 inputs (``mediation_effects(dtype=float32)``) give float32 rows, every cell (the
    constant DM rows and the NaN cells included) equal to the float64 numpy reference within
    float32 rounding."""
    rows, preds, pe = _inputs(9, "gaussian")
    rng = np.random.default_rng(13)
    r = rng.normal(size=N)
    iw = tuple(rng.uniform(0.2, 3.0, size=(4, N)))
    ratios = rng.uniform(0.3, 2.0, size=(N, 3))
    eta = rng.normal(size=5)
    delta = rng.normal(size=(N, 6))

    def f32(x):
        return jnp.asarray(x, jnp.float32)

    got = estimator_rows(dict(reward=f32(r), action=f32(rows["action"])),
                         NuisancePredictions(*(f32(x) for x in preds)), f32(pe), 0,
                         RowWeights(*(f32(x) for x in iw)), f32(ratios), f32(eta), f32(delta),
                         natural=natural)
    assert got.dtype == jnp.float32
    ref = _np_rows(r, rows["action"], preds, pe, 0, iw, ratios, eta, delta, natural)
    got = np.asarray(got, np.float64)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(ref))
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("natural", [False, True])
def test_unstacked_rows_are_the_stacked_array_and_keep_their_own_derivatives(natural):
    """``estimator_rows(stacked=False)``: the 7 rows of the ``(n, 7, 5)`` array, bit for bit,
    each differentiable on its own (the IJ SE transposes one row group at a time)."""
    import jax
    rows, preds, pe = _inputs(21, "gaussian")
    rng = np.random.default_rng(22)
    jrows = dict(reward=jnp.asarray(rng.normal(size=N)), action=jnp.asarray(rows["action"]))
    iw = RowWeights(*(jnp.asarray(x) for x in rng.uniform(0.2, 3.0, size=(4, N))))
    ratios = jnp.asarray(rng.uniform(0.3, 2.0, size=(N, 3)))
    delta = jnp.asarray(rng.normal(size=(N, 6)))
    jpreds = NuisancePredictions(*(jnp.asarray(x) for x in preds))

    def rows_of(eta, stacked=True):
        return estimator_rows(jrows, jpreds, jnp.asarray(pe), 0, iw, ratios, eta, delta,
                              natural=natural, stacked=stacked)

    eta = jnp.asarray(rng.normal(size=5))
    full, parts = rows_of(eta), rows_of(eta, stacked=False)
    assert isinstance(parts, tuple) and len(parts) == len(ESTIMATORS)
    for e, part in enumerate(parts):
        np.testing.assert_array_equal(part, full[:, e])
    mr = ESTIMATORS.index("MR")
    g_full = jax.grad(lambda e: jnp.sum(rows_of(e)[:, mr, :4]))(eta)
    g_part = jax.grad(lambda e: jnp.sum(rows_of(e, False)[mr][:, :4]))(eta)
    assert np.abs(np.asarray(g_full)).max() > 1e-3
    np.testing.assert_array_equal(g_part, g_full)
