"""Per-stage cost of the IJ reverse pass (issue 13): forward time and the time of a ``vmap``-ed
VJP over C random cotangents for each stage of ``estimate_pipeline`` (policy-free fit:
nuisances, bases, ratio features; then the Q-fits, the state ratios and the estimator rows).

    PYTHONPATH=. python3 benchmarks/ij_stage_profile.py --n 200 --horizon 25 [--cots 1,20] [--batch map]

``--batch vmap`` (default; the recorded ``results/ij-profile-20261130.json`` numbers) batches
the cotangents with ``vmap``; ``--batch map`` runs them one after another (``lax.map``, what
``ij_influence`` does).

Prints one JSON line: per stage, compile and median run seconds of the forward and of the
VJP with each cotangent count.
"""

from __future__ import annotations

import argparse
import json
import os
import time

import jax
import jax.numpy as jnp
import numpy as np


def _time(f, *args, rounds=3):
    t0 = time.perf_counter()
    jax.block_until_ready(f(*args))
    comp = time.perf_counter() - t0
    ts = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        jax.block_until_ready(f(*args))
        ts.append(time.perf_counter() - t0)
    return comp, float(np.median(ts))


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--horizon", type=int, default=25)
    ap.add_argument("--cots", default="1,20")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--batch", choices=("vmap", "map"), default="vmap")
    args = ap.parse_args(argv)
    jax.config.update("jax_enable_x64", True)
    import jaxmed
    from jaxmed._src.mediation.estimators import estimator_rows, row_importance_weights
    from jaxmed._src.mediation.knot_rule import resolve_state_knots
    from jaxmed._src.mediation.pipeline import fit_policy_free, policy_probs
    from jaxmed._src.mediation.q_function import fit_q_functions
    from jaxmed._src.mediation.state_ratio import fit_state_ratios
    from jaxmed._src.sim.semi_synthetic import simulate_semi_synthetic
    from jaxmed.mediation import MediationConfig

    data = simulate_semi_synthetic(jax.random.key(0), args.n, args.horizon)
    pol = jaxmed.policies.semi_synthetic_target_policy()
    cfg = resolve_state_knots(MediationConfig(), data.mask.size)
    key = jax.random.key(1)
    ones = jnp.ones(args.n, data.reward.dtype)
    fit = jax.jit(lambda v: fit_policy_free(key, data, v, cfg))(ones)
    rows, w, preds, feats, psi, psi_next = fit
    pe_s = policy_probs(pol, rows["state"])
    pe_next = policy_probs(pol, rows["next_state"])
    iw = row_importance_weights(rows, preds, pe_s, 0, cfg.rho_trunc)
    q = jax.jit(lambda w, preds, feats: fit_q_functions(rows, w, preds, feats, pe_s, pe_next, 0,
                                                        cfg.q_ridge, cfg))(w, preds, feats)
    cs = jnp.stack([iw.kappa_e, iw.kappa_0 * iw.rho, iw.kappa_0], axis=1)

    def ratios_fn(w, psi, psi_next, cs):
        fits = fit_state_ratios(psi, psi_next, cs, w, cfg.ratio_ridge, cfg.ratio_trunc,
                                cfg.ratio_normalize, cfg.soft_clip, feature_major=True)
        return jnp.stack([f.values for f in fits], axis=1)

    ratios = jax.jit(ratios_fn)(w, psi, psi_next, cs)
    stages = {
        "policy_free_fit": (lambda v: fit_policy_free(key, data, v, cfg)[1:], (ones,)),
        "q_functions": (lambda w, preds, feats: fit_q_functions(
            rows, w, preds, feats, pe_s, pe_next, 0, cfg.q_ridge, cfg)[:2], (w, preds, feats)),
        "state_ratios": (ratios_fn, (w, psi, psi_next, cs)),
        "estimator_rows": (lambda preds, iw, ratios, eta, delta: estimator_rows(
            rows, preds, pe_s, 0, iw, ratios, eta, delta), (preds, iw, ratios, q.eta, q.delta)),
    }
    out = dict(n=args.n, horizon=args.horizon, device=str(jax.devices()[0]), jax=jax.__version__,
               load_average=list(os.getloadavg()), stages={})
    for name, (f, xs) in stages.items():
        rec = {}
        rec["forward_compile_s"], rec["forward_s"] = _time(jax.jit(f), *xs, rounds=args.rounds)
        y = f(*xs)
        for c in (int(x) for x in args.cots.split(",")):
            cts = jax.tree.map(lambda a: jax.random.normal(jax.random.key(2), (c,) + a.shape, a.dtype)
                               if jnp.issubdtype(a.dtype, jnp.floating) else None, y)

            def back(xs, cts, f=f):
                _, pull = jax.vjp(f, *xs)
                return jax.vmap(pull)(cts) if args.batch == "vmap" else jax.lax.map(pull, cts)

            rec[f"vjp{c}_compile_s"], rec[f"vjp{c}_s"] = _time(jax.jit(back), xs, cts,
                                                              rounds=args.rounds)
        out["stages"][name] = rec
        print(name, json.dumps(rec), flush=True)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
