"""Paired variants of the calendar-time pipeline against the stationary one, same data and key.

Usage (repository root, ``PYTHONPATH=.``)::

    [BURN=b] python3 experiments/drift_gap_diagnosis/paired_variants.py N T REPS KAPPA MODE...

Each MODE is a name whose tokens select a variant of the calendar-time pipeline ("spline"
time effects, the default Q interactions); ``plain`` is the pipeline as it is:

- ``add``: additive calendar time (``time_effects="additive"``);
- ``mtoff``: mediator model without calendar time (``mediator_time=False``);
- ``inj``: the stationary pipeline's nuisance predictions injected;
- ``hb`` / ``hm`` / ``hr``: only the behaviour / mediator / reward predictions replaced by the
  stationary ones;
- ``blind``: τ-blind random Fourier ratio features;
- ``ob`` / ``om`` / ``or``: the design's true behaviour / mediator / reward predictions
  injected (oracle nuisances);
- ``rtK``: the random Fourier ratio features' frequencies along τ multiplied by K (a kernel K
  times narrower in calendar time);
- ``fe``: calendar-time fixed effects (one-hot τ) instead of τ's spline block among the Q
  features' main effects (the spline block stays in the products with s and m);
- ``tkK``: K interior knots for the calendar-time spline only (the state's stay at the rule's);
- ``rfD`` / ``rdM``: D random Fourier ratio features / M draws of them (``ratio_features``,
  ``ratio_draws``);
- ``k8``: 8 interior state knots (the knot rule's cap raised from 5; n^{1/5} = 8.2 at
  N·T = 37,500);
- ``full``: the Q products of τ's spline block with every term of h(s) and of g(m);
  ``fulls`` / ``fullm``: with every term of h(s) / of g(m) only (the other side linear);
- ``trend``: the Q products with τ's linear term only; ``four``: with [z_τ, cos, sin of 2πτ/T
  and 4πτ/T]; ``fouronly``: the periodic terms only.

``BURN=b`` simulates T + b steps (the exogenous path repeated with period T) and keeps the
last T (data that start near the steady state; b a multiple of T keeps the calendar times).
Diagnosis only, not the library: the τ-blind features and the other Q products replace
internals (``pipeline.fit_ratio_features``, ``q_function._time_interactions``) in this process.
Prints the stationary MR bias against the drift truth and, per mode, the paired differences
(mean ± SE over the replications) of MR and DM, calendar-time minus stationary.
"""

import os
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

jax.config.update("jax_enable_x64", True)

from jaxmed._src import policies as P  # noqa: E402
from jaxmed._src.mediation import basis as B  # noqa: E402
from jaxmed._src.mediation import nuisance_models as NM  # noqa: E402
from jaxmed._src.mediation import pipeline as PL  # noqa: E402
from jaxmed._src.mediation import q_function as QF  # noqa: E402
from jaxmed._src.mediation import state_ratio as SR  # noqa: E402
from jaxmed._src.mediation.config import RATIO_FEATURES, MediationConfig  # noqa: E402
from jaxmed._src.mediation.time_effects import augment_with_time, time_config  # noqa: E402
from jaxmed._src.sim import drift as D  # noqa: E402
from jaxmed._src.sim import semi_synthetic as SS  # noqa: E402
from jaxmed._src.state_slice_policy import StateSlicePolicy  # noqa: E402
from jaxmed._src.trajectories import Trajectories  # noqa: E402

n, T, reps, kappa = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
modes = sys.argv[5:]
burn = int(os.environ.get("BURN", "0"))
VARIANT = {"blind": False, "q_tau": None, "tk": 0, "fe": False, "rt": 0}  # set while a mode's program is traced

_ratio_features = SR.fit_ratio_features
_time_interactions = QF._time_interactions


def ratio_features(key, state, weights, config):
    rf = _ratio_features(key, state, weights, config)
    ds, d = state.shape[1], (RATIO_FEATURES if config.ratio_features is None
                             else config.ratio_features)
    if ds >= 2 and VARIANT["rt"]:  # frequencies along τ scaled: a narrower kernel in τ
        return SR.RatioFeatures(rf.standardizer, rf.w.at[-1].multiply(VARIANT["rt"]), rf.b)
    if ds < 2 or not VARIANT["blind"]:
        return rf
    kw, _ = jax.random.split(key)
    ws = jnp.sqrt(2.0) * jax.random.normal(kw, (ds - 1, d), state.dtype)
    return SR.RatioFeatures(rf.standardizer, jnp.concatenate([ws, jnp.zeros((1, d), state.dtype)]), rf.b)


def time_interactions(h, g, ds, dm, config):
    kind = VARIANT["q_tau"]
    if kind is None or config.q_time_interactions == "none":
        return _time_interactions(h, g, ds, dm, config)
    k = config.state_knots + 4
    zt = h[:, (ds - 1) * k:(ds - 1) * k + 1]
    if kind in ("full", "fulls", "fullm"):
        pass
    elif kind == "trend":
        tau = zt
    else:
        t = zt * jnp.sqrt((T * T - 1) / 12.0) + (T - 1) / 2.0
        x = 2 * jnp.pi * t / T
        periodic = [jnp.cos(x), jnp.sin(x), jnp.cos(2 * x), jnp.sin(2 * x)]
        tau = jnp.concatenate(periodic if kind == "fouronly" else [zt] + periodic, axis=1)
    if kind in ("full", "fulls", "fullm"):
        tau = h[:, (ds - 1) * k:ds * k]
        s_part = h[:, :(ds - 1) * k] if kind in ("full", "fulls") else h[:, 0:(ds - 1) * k:k]
        m_part = g if kind in ("full", "fullm") else g[:, :dm]
        others = jnp.concatenate([s_part, m_part], axis=-1)
    else:
        others = jnp.concatenate([h[:, 0:(ds - 1) * k:k], g[:, :dm]], axis=-1)
    inter = (tau[:, :, None] * others[:, None, :]).reshape(h.shape[0], -1)
    return jnp.concatenate([h, g, inter], axis=-1)


def fit_state_basis(state, w, n_knots, weighted_knots=True):
    """``basis.fit_state_basis`` with ``VARIANT["tk"]`` interior knots for the last (calendar
    time) coordinate when it is set and the state has more than one coordinate."""
    tk = VARIANT["tk"]
    if not tk or state.shape[1] < 2:
        return B.fit_state_basis(state, w, n_knots, weighted_knots)
    std = B.fit_standardizer(state, w)
    z = std(state)
    knots = []
    for j in range(state.shape[1]):
        k = tk if j == state.shape[1] - 1 else n_knots
        probs = jnp.linspace(0.0, 1.0, k + 2, dtype=z.dtype)
        qs = jax.lax.stop_gradient(B.weighted_quantile(z[:, j], w, probs))
        knots.append(jnp.concatenate([jnp.repeat(qs[:1], 3), qs, jnp.repeat(qs[-1:], 3)]))
    return B.StateBasis(std, tuple(knots))


def time_interactions_tk(h, g, ds, dm, config):
    """``_time_interactions`` with τ's block the last ``tk + 4`` columns of h."""
    tk = VARIANT["tk"]
    if not tk or config.q_time_interactions == "none":
        return time_interactions(h, g, ds, dm, config)
    k = config.state_knots + 4
    tau = h[:, h.shape[1] - (tk + 4):]
    others = jnp.concatenate([h[:, 0:(ds - 1) * k:k], g[:, :dm]], axis=-1)
    inter = (tau[:, :, None] * others[:, None, :]).reshape(h.shape[0], -1)
    return jnp.concatenate([h, g, inter], axis=-1)


_q_state_features = QF.q_state_features


def q_state_features(basis, state, config):
    """h(s, τ), with ``VARIANT["fe"]`` also calendar-time fixed effects (one-hot τ but the
    first) appended."""
    h = _q_state_features(basis, state, config)
    if not VARIANT["fe"] or state.shape[1] < 2:
        return h
    onehot = jax.nn.one_hot(state[:, -1].astype(jnp.int32), T, dtype=h.dtype)[:, 1:]
    return jnp.concatenate([h, onehot], axis=1)


def time_interactions_fe(h, g, ds, dm, config):
    """With ``VARIANT["fe"]``: main effects [h(s), fixed effects of τ, g(m)] (τ's spline block
    only in the products with the linear terms of s and m)."""
    if not VARIANT["fe"] or config.q_time_interactions == "none":
        return time_interactions_tk(h, g, ds, dm, config)
    k = config.state_knots + 4
    fe = h[:, ds * k:]
    tau = h[:, (ds - 1) * k:ds * k]
    others = jnp.concatenate([h[:, 0:(ds - 1) * k:k], g[:, :dm]], axis=-1)
    inter = (tau[:, :, None] * others[:, None, :]).reshape(h.shape[0], -1)
    return jnp.concatenate([h[:, :(ds - 1) * k], fe, g, inter], axis=-1)


PL.fit_ratio_features = ratio_features
QF._time_interactions = time_interactions_fe
QF.q_state_features = q_state_features
QF.fit_state_basis = fit_state_basis
NM.fit_state_basis = fit_state_basis

pol = P.semi_synthetic_target_policy()
stationary = MediationConfig()
HYBRID = {"hb": ("behaviour_prob",),
          "hm": ("mediator_mean", "mediator_sd", "mediator_mean_next", "mediator_sd_next"),
          "hr": ("reward_at_mediator", "reward_expected")}


def stat(key, d):
    fit = PL.fit_policy_free(key, d, jnp.ones(d.mask.shape[0]), stationary)
    return PL.policy_stage(fit, pol, 0, stationary).estimate, fit.preds


def timed(key, d, preds, mode):
    tokens = mode.split("_")
    VARIANT["blind"] = "blind" in tokens
    VARIANT["q_tau"] = next((t for t in ("trend", "four", "fouronly", "full", "fulls", "fullm")
                             if t in tokens), None)
    cfg = time_config(None, "additive" if "add" in tokens else "spline",
                      mediator_time="mtoff" not in tokens)
    if "k8" in tokens:
        cfg = cfg.replace(state_knots=8)
    VARIANT["fe"] = "fe" in tokens
    VARIANT["rt"] = next((int(t[2:]) for t in tokens if t.startswith("rt") and t[2:].isdigit()), 0)
    VARIANT["tk"] = next((int(t[2:]) for t in tokens if t.startswith("tk") and t[2:].isdigit()), 0)
    for t in tokens:  # rfD: D random Fourier ratio features; rdM: M draws of them
        if t.startswith("rf") and t[2:].isdigit():
            cfg = cfg.replace(ratio_features=int(t[2:]))
        if t.startswith("rd") and t[2:].isdigit():
            cfg = cfg.replace(ratio_draws=int(t[2:]))
    tau = jnp.broadcast_to(jnp.arange(T, dtype=d.state.dtype), d.mask.shape)
    aug = augment_with_time(d, tau, T)
    ones = jnp.ones(d.mask.shape[0])
    inject = "inj" in tokens
    hybrid = [f for h, fields in HYBRID.items() if h in tokens for f in fields]
    if hybrid:
        own = PL.fit_policy_free(key, aug, ones, cfg).preds
        preds = own._replace(**{f: getattr(preds, f) for f in hybrid})
        inject = True
    oracle = [t for t in ("ob", "om", "or") if t in tokens]
    if oracle:
        own = PL.fit_policy_free(key, aug, ones, cfg).preds
        preds = own._replace(**oracle_predictions(aug, oracle))
        inject = True
    fit = PL.fit_policy_free(key, aug, ones, cfg, preds if inject else None)
    return PL.policy_stage(fit, StateSlicePolicy(pol, 1), 0, cfg).estimate


def oracle_predictions(aug, which):
    """The design's true nuisances on the flat rows of the augmented data (``ob``: behaviour
    0.5, ``om``: the mediator law, ``or``: the reward means with the drift's u_τ)."""
    s = aug.state[..., 0].reshape(-1)
    tau = aug.state[..., 1].reshape(-1).astype(jnp.int32)
    s_next = aug.next_state[..., 0].reshape(-1)
    m = aug.mediator.reshape(-1, 2)
    u = jnp.asarray(D.exogenous_path(kappa, T)[1])[tau]
    acts = (0.0, 1.0)

    def means(st):  # (n, 2 actions, 2 coordinates)
        return jnp.stack([jax.vmap(lambda x: SS.semi_synthetic_mediator_mean(x[None], a))(st)
                          for a in acts], axis=1)

    out = {}
    if "ob" in which:
        out["behaviour_prob"] = jnp.full_like(s, 0.5)
    if "om" in which:
        sd = jnp.full(s.shape + (2, 2), 2.0, s.dtype)
        out.update(mediator_mean=means(s), mediator_sd=sd, mediator_mean_next=means(s_next),
                   mediator_sd_next=sd)
    if "or" in which:
        out["reward_at_mediator"] = jnp.stack(
            [jax.vmap(lambda x, mm: SS.semi_synthetic_reward_mean(x[None], a, mm))(s, m)
             for a in acts], axis=1) + u[:, None]
        out["reward_expected"] = jnp.stack([jnp.stack(
            [jax.vmap(lambda x: SS.semi_synthetic_expected_reward(x[None], am, ar))(s)
             for am in acts], axis=1) for ar in acts], axis=1) + u[:, None, None]
    return out


stat_j = jax.jit(stat)
fns = {m: jax.jit(lambda k, d, p, m=m: timed(k, d, p, m)) for m in modes}
res = {m: [] for m in ["stat"] + modes}
for r in range(reps):
    k1, k2 = jax.random.split(jax.random.key(1000 + r))
    d = D.simulate_semi_synthetic_drift(k1, n, T + burn, strength=kappa, period=T)
    d = Trajectories(*(jnp.asarray(x, jnp.float64)[:, burn:] for x in d))
    t0 = time.time()
    e, preds = stat_j(k2, d)
    res["stat"].append(np.asarray(e))
    for m in modes:
        res[m].append(np.asarray(fns[m](k2, d, preds)))
    print(r, f"{time.time() - t0:.1f}s", flush=True)
tr = D.cached_drift_truth(kappa, T).effects
truth = np.array([tr[e] for e in ("IDE", "IME", "DDE", "DME", "ATE")])
s0 = np.array(res["stat"])
print("stat MR bias", (s0[:, 0] - truth).mean(0).round(4))
for m in modes:
    err = np.array(res[m])[:, 0] - truth
    print(f"{m:22s} MR bias", " ".join(f"{a:+.4f}±{b:.4f}" for a, b in
                                        zip(err.mean(0), err.std(0, ddof=1) / np.sqrt(reps))))
for m in modes:
    diff = np.array(res[m])[:, :2] - s0[:, :2]
    mm, ss = diff.mean(0), diff.std(0, ddof=1) / np.sqrt(reps)
    for i, e in enumerate(("MR", "DM")):
        print(f"{m:22s} {e} -stat", " ".join(f"{a:+.4f}±{b:.4f}" for a, b in zip(mm[i], ss[i])))
