import sys, time, jax, jax.numpy as jnp, numpy as np
jax.config.update("jax_enable_x64", True)
from jaxmed._src import policies as P
from jaxmed._src.sim import drift as D
from jaxmed._src.mediation import state_ratio as SR, pipeline as PL
from jaxmed._src.mediation.config import MediationConfig
from jaxmed._src.mediation.time_effects import augment_with_time, time_config
from jaxmed._src.state_slice_policy import StateSlicePolicy
from jaxmed._src.trajectories import Trajectories
n, T, reps, kappa = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
modes = sys.argv[5:]
orig = SR.fit_ratio_features
BLIND = [False]
def patched(key, state, weights, config):
    rf = orig(key, state, weights, config)
    ds, d = state.shape[1], config.ratio_features
    if ds < 2 or not BLIND[0]:
        return rf
    kw, kb = jax.random.split(key)
    ws = jnp.sqrt(2.0) * jax.random.normal(kw, (ds - 1, d), state.dtype)
    return SR.RatioFeatures(rf.standardizer, jnp.concatenate([ws, jnp.zeros((1, d), state.dtype)]), rf.b)
PL.fit_ratio_features = patched
from jaxmed._src.mediation import q_function as QF
TREND = [None]
_ti = QF._time_interactions
def _ti2(h, g, ds, dm, config):
    if TREND[0] is None or config.q_time_interactions == "none":
        return _ti(h, g, ds, dm, config)
    k = config.state_knots + 4
    tau = h[:, (ds - 1) * k:(ds - 1) * k + TREND[0]]
    others = jnp.concatenate([h[:, 0:(ds - 1) * k:k], g[:, :dm]], axis=-1)
    inter = (tau[:, :, None] * others[:, None, :]).reshape(h.shape[0], -1)
    return jnp.concatenate([h, g, inter], axis=-1)
QF._time_interactions = _ti2
pol = P.semi_synthetic_target_policy()
cs, ct = MediationConfig(), time_config(None, "spline")
ca = time_config(None, "additive")
def stat(key, d):
    fit = PL.fit_policy_free(key, d, jnp.ones(d.mask.shape[0]), cs)
    return PL.policy_stage(fit, pol, 0, cs).estimate, fit.preds
def timed(key, d, preds, cfg, blind, inject, m_=''):
    BLIND[0] = blind
    TREND[0] = 1 if 'trend' in m_ else None
    tau = jnp.broadcast_to(jnp.arange(T, dtype=d.state.dtype), d.mask.shape)
    aug = augment_with_time(d, tau, T)
    HY = {"hb": ("behaviour_prob",), "hm": ("mediator_mean", "mediator_sd", "mediator_mean_next", "mediator_sd_next"),
          "hr": ("reward_at_mediator", "reward_expected")}
    hy = [f for k, v in HY.items() if k in m_ for f in v]
    if hy:
        p0 = PL.fit_policy_free(key, aug, jnp.ones(d.mask.shape[0]), cfg).preds
        preds = p0._replace(**{f: getattr(preds, f) for f in hy}); inject = True
    fit = PL.fit_policy_free(key, aug, jnp.ones(d.mask.shape[0]), cfg, preds if inject else None)
    return PL.policy_stage(fit, StateSlicePolicy(pol, 1), 0, cfg).estimate
stat_j = jax.jit(stat)
fns = {m: jax.jit(lambda k, d, p, m=m: timed(k, d, p, ca if "add" in m else ct, "blind" in m, "inj" in m, m)) for m in modes}
res = {m: [] for m in ["stat"] + modes}
for r in range(reps):
    k1, k2 = jax.random.split(jax.random.key(1000 + r))
    d = D.simulate_semi_synthetic_drift(k1, n, T, strength=kappa)
    d = Trajectories(*(jnp.asarray(x, jnp.float64) for x in d))
    t0 = time.time()
    e, preds = stat_j(k2, d)
    res["stat"].append(np.asarray(e))
    for m in modes:
        res[m].append(np.asarray(fns[m](k2, d, preds)))
    print(r, f"{time.time()-t0:.1f}s", flush=True)
tr = D.cached_drift_truth(kappa, T).effects
truth = np.array([tr[e] for e in ("IDE", "IME", "DDE", "DME", "ATE")])
s0 = np.array(res["stat"])
print("stat MR bias", (s0[:, 0] - truth).mean(0).round(4))
for m in modes:
    diff = np.array(res[m])[:, :2] - s0[:, :2]
    mm, ss = diff.mean(0), diff.std(0, ddof=1) / np.sqrt(reps)
    for i, e in enumerate(("MR", "DM")):
        print(f"{m:22s} {e} -stat", " ".join(f"{a:+.4f}±{b:.4f}" for a, b in zip(mm[i], ss[i])))
