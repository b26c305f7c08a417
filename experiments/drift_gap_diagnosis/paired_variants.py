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
- ``rfD`` / ``rdM``: D random Fourier ratio features / M draws of them (``ratio_features``,
  ``ratio_draws``);
- ``k8``: 8 interior state knots (the knot rule's cap raised from 5; n^{1/5} = 8.2 at
  N·T = 37,500);
- ``full``: the Q products of τ's spline block with every term of h(s) and of g(m);
  ``fulls`` / ``fullm``: with every term of h(s) / of g(m) only (the other side linear);
- ``trend``: the Q products with τ's linear term only; ``four``: with [z_τ, cos, sin of 2πτ/T
  and 4πτ/T]; ``fouronly``: the periodic terms only.

``BURN=b`` simulates T + b steps and keeps the last T (data that start near the steady state).
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
from jaxmed._src.mediation import pipeline as PL  # noqa: E402
from jaxmed._src.mediation import q_function as QF  # noqa: E402
from jaxmed._src.mediation import state_ratio as SR  # noqa: E402
from jaxmed._src.mediation.config import MediationConfig  # noqa: E402
from jaxmed._src.mediation.time_effects import augment_with_time, time_config  # noqa: E402
from jaxmed._src.sim import drift as D  # noqa: E402
from jaxmed._src.state_slice_policy import StateSlicePolicy  # noqa: E402
from jaxmed._src.trajectories import Trajectories  # noqa: E402

n, T, reps, kappa = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
modes = sys.argv[5:]
burn = int(os.environ.get("BURN", "0"))
VARIANT = {"blind": False, "q_tau": None}  # set while a mode's program is traced

_ratio_features = SR.fit_ratio_features
_time_interactions = QF._time_interactions


def ratio_features(key, state, weights, config):
    rf = _ratio_features(key, state, weights, config)
    ds, d = state.shape[1], config.ratio_features
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


PL.fit_ratio_features = ratio_features
QF._time_interactions = time_interactions

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
    fit = PL.fit_policy_free(key, aug, ones, cfg, preds if inject else None)
    return PL.policy_stage(fit, StateSlicePolicy(pol, 1), 0, cfg).estimate


stat_j = jax.jit(stat)
fns = {m: jax.jit(lambda k, d, p, m=m: timed(k, d, p, m)) for m in modes}
res = {m: [] for m in ["stat"] + modes}
for r in range(reps):
    k1, k2 = jax.random.split(jax.random.key(1000 + r))
    d = D.simulate_semi_synthetic_drift(k1, n, T + burn, strength=kappa)
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
