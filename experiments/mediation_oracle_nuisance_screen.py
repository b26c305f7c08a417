"""Paired screen: the stationary MR with true nuisances injected, on a semi-synthetic design (issue 13).

Which fitted piece carries MR's bias? Replication r:
``fold_in(key(777), r)`` split into data and estimation keys (as in
``mediation_variant_screen.py``); on the same data and key, the design's configuration with
some of the fitted nuisance predictions replaced by the design's true ones (``Design.nuisances``,
``Design.behaviour_policy``; the oracle tokens need a Gaussian mediator law: semi-synthetic,
variance-K, multidim; configuration variants alone run on any mediation design):

- ``ob``: the behaviour policy;
- ``om``: the mediator law N(μ(s, a), σ² I) at the rows' states and next states;
- ``or``: the reward mean r(s, a, m) and its exact expectation over the true mediator law;

modes are ``base`` (all fitted) or ``+``-joined tokens (``ob+om+or``), which may also hold
configuration variants (``screen_common.VARIANT_HELP``, e.g. ``rd5``: reward monomials of
degree 5; ``or+k8``). Injected predictions are
held fixed, so only the bias is compared (the IJ SE of an injected run treats them as known).
Prints and writes (``--out``) MR's (and DM's) bias ± MC SE against the design's truth and
the paired differences of each mode from the first.

Usage:
  PYTHONPATH=. python3 experiments/mediation_oracle_nuisance_screen.py variance-1 1500 50 100 \\
      base,or,om,ob+om+or --out experiments/results/oracle_screen_variance1.json
"""

from __future__ import annotations

import argparse
import json
import time

import jax
import jax.numpy as jnp
import numpy as np

jax.config.update("jax_enable_x64", True)

from jaxmed import study  # noqa: E402
from jaxmed._src.mediation.design_config import config_for_design  # noqa: E402
from jaxmed._src.mediation.effects import mediation_core  # noqa: E402
from jaxmed._src.mediation.pipeline import nuisance_stage  # noqa: E402
from jaxmed._src.sim.designs import truth  # noqa: E402

from experiments.screen_common import VARIANT_HELP, paired_runs, variant_config  # noqa: E402
from jaxmed._src.sim.truth import EFFECT_NAMES as EFFECTS  # noqa: E402  (the truths' keys)

TOKENS = ("ob", "om", "or")


def true_predictions(design, rows, which):
    """The fields of ``NuisancePredictions`` that ``which`` (subset of ``TOKENS``) replaces, from
    the design's true behaviour policy and nuisance functions (``Design.nuisances``: a
    Gaussian mediator law and the reward mean with its expectation over that law)."""
    s, s_next = rows["state"], rows["next_state"]
    a, m = rows["action"], rows["mediator"]
    nu = design.nuisances
    acts = (0.0, 1.0)
    out = {}
    if "ob" in which:
        p1 = jnp.broadcast_to(design.behaviour_policy.prob_one(s), a.shape)
        out["behaviour_prob"] = a * p1 + (1 - a) * (1 - p1)
    if ("om" in which or "or" in which) and "mediator_mean" not in nu:
        raise SystemExit(f"{design.name}: no Gaussian mediator law among its true nuisances")

    def means(st):  # (n, 2 actions, dM)
        return jnp.stack([jax.vmap(lambda x: nu["mediator_mean"](x, b))(st) for b in acts],
                         axis=1)

    if "om" in which:
        mu = means(s)
        sd = jnp.broadcast_to(jnp.asarray(nu["mediator_sd"], s.dtype), mu.shape)
        out.update(mediator_mean=mu, mediator_sd=sd, mediator_mean_next=means(s_next),
                   mediator_sd_next=sd)
    if "or" in which:
        out["reward_at_mediator"] = jnp.stack(
            [jax.vmap(lambda x, mm: nu["reward_mean"](x, b, mm))(s, m) for b in acts], axis=1)
        out["reward_expected"] = jnp.stack([jnp.stack(
            [jax.vmap(lambda x: nu["expected_reward"](x, am, ar))(s) for am in acts], axis=1)
            for ar in acts], axis=1)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("design", help="a mediation design (the oracle tokens need a Gaussian "
                    "mediator law among its true nuisances: semi-synthetic, variance-K, "
                    "multidim)")
    ap.add_argument("n", type=int)
    ap.add_argument("horizon", type=int)
    ap.add_argument("reps", type=int)
    ap.add_argument("modes", help="comma-separated: base or +-joined tokens of ob, om, or and "
                    "configuration variants (" + VARIANT_HELP + ")")
    ap.add_argument("--draws", type=int, default=None, help="ratio_draws M (default: design's)")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    modes = args.modes.split(",")
    design = study.get_design(args.design)
    tr = truth(args.design).effects
    true = np.array([tr[k] for k in EFFECTS])
    cfg = config_for_design(design).replace(se_method="cluster")
    if args.draws:
        cfg = cfg.replace(ratio_draws=args.draws)

    def split_mode(mode):  # (oracle tokens, the mode's configuration)
        parts = [] if mode == "base" else mode.split("+")
        oracle = [t for t in parts if t in TOKENS]
        rest = [t for t in parts if t not in TOKENS]
        return oracle, variant_config(cfg, "+".join(rest) or "base")

    for mode in modes:
        split_mode(mode)  # a bad spelling fails here, before any work

    def run(key, data, mode):
        oracle, c = split_mode(mode)
        fit, predict = nuisance_stage(key, data, c)  # the pipeline's own fits, same key
        preds = predict(fit(None))
        if oracle:
            preds = preds._replace(**true_predictions(design, data.flat(), oracle))
        return mediation_core(key, data, design.target_policy, 0, c, nuisances=preds).estimate

    fns = {m: jax.jit(lambda k, d, m=m: run(k, d, m)) for m in modes}
    t0 = time.time()
    outs = paired_runs(design, args.n, args.horizon, args.reps, fns)
    est = {m: [np.asarray(o)[:2] for o in outs[m]] for m in modes}  # MR, DM rows
    out = {"args": vars(args), "wall_s": time.time() - t0, "truth": true.tolist(), "modes": {},
           "paired": {}}
    for m in modes:
        err = np.array(est[m]) - true  # (reps, 2, 5)
        rec = {"bias": err.mean(0).tolist(),
               "bias_se": (err.std(0, ddof=1) / np.sqrt(args.reps)).tolist(),
               "sd": np.array(est[m]).std(0, ddof=1).tolist()}
        out["modes"][m] = rec
        for i, name in enumerate(("MR", "DM")):
            print(f"{m:12s} {name} bias", " ".join(
                f"{b:+.4f}±{s:.4f}" for b, s in zip(rec["bias"][i], rec["bias_se"][i])))
    for m in modes[1:]:
        diff = np.array(est[m]) - np.array(est[modes[0]])
        out["paired"][m] = {"mean": diff.mean(0).tolist(),
                            "se": (diff.std(0, ddof=1) / np.sqrt(args.reps)).tolist()}
        print(f"paired {m} - {modes[0]} MR", " ".join(
            f"{b:+.4f}±{s:.4f}" for b, s in zip(diff.mean(0)[0],
                                                 diff.std(0, ddof=1)[0] / np.sqrt(args.reps))))
    if args.out:
        with open(args.out, "w") as fh:
            json.dump(out, fh, indent=1)


if __name__ == "__main__":
    main()
