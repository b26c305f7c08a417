"""What the paired variant screens share: the variant spellings and the command line."""

from __future__ import annotations

import argparse

__all__ = ["variant_config", "screen_parser", "VARIANT_HELP"]

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
