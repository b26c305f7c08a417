"""A mediation result as a table that explains itself: what the effects are, why a cell is NaN.

Used by ``jaxmed estimate`` (printed table, ``--out`` JSON/CSV); the status in words comes
from ``jaxmed._src.status``.
"""

from __future__ import annotations

import numpy as np

from jaxmed._src.status import MediationStatus, mediation_status_text

__all__ = ["EFFECTS_MEANING", "SE_MEANING", "mediation_report", "undefined_cells"]

EFFECTS_MEANING = (
    "Effects are long-run averages per step: differences of eta = lim (1/T) sum_t E[R_t] under "
    "the target policy, the control policy and mixtures of them (Ge et al. 2023). "
    "IDE/IME: immediate direct/mediated effect; DDE/DME: delayed direct/mediated effect "
    "(through the next states); ATE = IDE + IME + DDE + DME = eta(target) - eta(control).")

NO_SE_DM = ("no SE: DM has no naive cluster SE; `--se ij` (MediationConfig(se_method='ij')) "
            "gives its sandwich SE, MediationConfig(n_boot=B) a bootstrap SE")
NO_SE = "no SE: not available for this estimator and effect"
NO_SE_NONFINITE = "no SE: the standard error is not finite here (status se_nonfinite)"
NO_SE_IJ = "no SE: the sandwich SE is not finite here (see the status)"
NO_SE_IJ_SKIPPED = ("no SE: not computed (MediationConfig.ij_estimators leaves this row out; "
                    "its reverse passes were skipped)")

SE_MEANING = {
    "cluster": ("SE: naive trajectory-cluster SE (the fitted nuisance models, Q-functions and "
                "state ratios are treated as known; it under-covers, see docs; `--se ij` for the "
                "sandwich SE). CI: estimate +- 1.96 SE."),
    "ij": ("SE: infinitesimal-jackknife sandwich SE through the whole pipeline (nuisance models, "
           "Q-functions, ratios and each estimator; knots and random features held fixed). "
           "CI: estimate +- 1.96 SE."),
}


def undefined_cells(result) -> dict[str, list[str]]:
    """``{estimator: [effects it does not define]}`` (NaN estimates, left out of the table).

    MIS2 and the point-exposure baselines estimate only IDE and IME.
    """
    from jaxmed._src.mediation.estimators import EFFECTS, ESTIMATORS

    est = np.asarray(result.estimate)
    out = {}
    for i, name in enumerate(ESTIMATORS):
        missing = [EFFECTS[j] for j in range(len(EFFECTS)) if np.isnan(est[i, j])]
        if missing:
            out[name] = missing
    return out


def mediation_report(result, se_method: str = "cluster", ij_estimators=None, n_boot: int = 0):
    """``result.to_frame()`` with a ``note`` column saying why an SE or CI is NaN
    (``se_method``, ``ij_estimators`` and ``n_boot``: the ``MediationConfig`` fields that
    produced ``result``; with ``se_method="ij"`` the rows outside ``ij_estimators`` have no
    SE; with the cluster SE, DM's SE is the bootstrap's when ``n_boot > 1``).

    Returns:
      (frame, status, status_text): the DataFrame (estimator, effect, estimate, se, ci_low,
      ci_high, note; only the defined cells), the status int and the status in words.
    """
    from jaxmed._src.mediation.config import MediationConfig
    from jaxmed._src.mediation.effects import se_rows
    from jaxmed._src.mediation.estimators import ESTIMATORS

    # the rows whose SE was asked for: the same rule as the SE_NONFINITE guard (``se_rows``)
    asked = dict(zip(ESTIMATORS, se_rows(MediationConfig(
        se_method=se_method, ij_estimators=ij_estimators, n_boot=n_boot))))
    frame = result.to_frame()
    status = int(np.asarray(result.diagnostics.status))
    se_nonfinite = bool(status & MediationStatus.SE_NONFINITE)
    notes = []
    for est, value, se in zip(frame["estimator"], frame["estimate"].to_numpy(dtype=float),
                              frame["se"].to_numpy(dtype=float)):
        if np.isfinite(se):
            notes.append("")
        elif se_method == "ij":
            notes.append(NO_SE_IJ if asked[est] else NO_SE_IJ_SKIPPED)
        elif not asked[est]:  # DM without a bootstrap
            notes.append(NO_SE_DM)
        else:  # a finite estimate without its cluster SE sets SE_NONFINITE (guard_se)
            notes.append(NO_SE_NONFINITE if se_nonfinite and np.isfinite(value) else NO_SE)
    frame = frame.assign(note=notes)
    return frame, status, mediation_status_text(status)
