"""What the paired variant screens share: the variant spellings and the command line."""

from __future__ import annotations

import argparse

import jax

__all__ = ["variant_config", "screen_parser", "paired_runs", "VARIANT_HELP"]

VARIANT_HELP = ("comma-separated variants: base; kK = K interior state knots (fixed rule); "
                "DD = D random Fourier ratio features; rX = q_ridge X; rrX = ratio_ridge X; "
                "nbX = nuisance_boundary_quantile X; rhoX = rho_trunc X; "
                "rdK = reward_degree K; A+B = both")


def variant_config(base, text: str):
    """``base``, ``kK``, ``DD``, ``rX``, ``rrX``, ``nbX``, ``rhoX`` or ``rdK`` (see ``VARIANT_HELP``) -> a
    ``MediationConfig`` derived from ``base``."""
    if "+" in text:  # several changes at once, e.g. nb0.01+rho50
        for part in text.split("+"):
            base = variant_config(base, part)
        return base
    if text == "base":
        return base
    if text.startswith("k"):
        return base.replace(state_knots=int(text[1:]), state_knots_rule="fixed")
    if text.startswith("D"):
        return base.replace(ratio_features=int(text[1:]))
    if text.startswith("rho"):
        return base.replace(rho_trunc=float(text[3:]))
    if text.startswith("rd"):
        return base.replace(reward_degree=int(text[2:]))
    if text.startswith("nb"):
        return base.replace(nuisance_boundary_quantile=float(text[2:]))
    if text.startswith("rr"):
        return base.replace(ratio_ridge=float(text[2:]))
    if text.startswith("r"):
        return base.replace(q_ridge=float(text[1:]))
    raise ValueError(f"variant {text!r}: expected base, kK, DD, rX, rrX, nbX, rhoX or rdK")


def screen_parser(description: str) -> argparse.ArgumentParser:
    """design, n, horizon, reps, variants and ``--out``."""
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("design")
    ap.add_argument("n", type=int)
    ap.add_argument("horizon", type=int)
    ap.add_argument("reps", type=int)
    ap.add_argument("variants", help=VARIANT_HELP)
    ap.add_argument("--out", default=None, help="JSON file for the results")
    return ap


def paired_runs(design, n: int, horizon: int, reps: int, fns: dict) -> dict:
    """Replication r: ``fold_in(key(777), r)`` split into data and estimation keys, the design's
    dataset of N trajectories of T steps, and every ``fns[name](key, data)`` on the same data
    and key. Returns ``{name: [its output (on the host) per replication]}``."""
    sim = jax.jit(lambda k: design.simulate(k, n, horizon))
    out = {name: [] for name in fns}
    for r in range(reps):
        kd, ke = jax.random.split(jax.random.fold_in(jax.random.key(777), r))
        data = sim(kd)
        for name, fn in fns.items():
            out[name].append(jax.device_get(fn(ke, data)))
    return out
