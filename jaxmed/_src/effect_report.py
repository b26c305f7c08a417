"""A mediation result as a table that explains itself: what the effects are, why a cell is NaN.

Used by ``jaxmed estimate`` (printed table, ``--out`` JSON/CSV); the status in words comes
from ``jaxmed._src.status``.
"""

from __future__ import annotations

import numpy as np

from jaxmed._src.status import mediation_status_text

__all__ = ["EFFECTS_MEANING", "mediation_report", "undefined_cells"]

EFFECTS_MEANING = (
    "Effects are long-run averages per step: differences of eta = lim (1/T) sum_t E[R_t] under "
    "the target policy, the control policy and mixtures of them (Ge et al. 2023). "
    "IDE/IME: immediate direct/mediated effect; DDE/DME: delayed direct/mediated effect "
    "(through the next states); ATE = IDE + IME + DDE + DME = eta(target) - eta(control).")

NO_SE_DM = ("no SE: DM has no influence-function standard error; "
            "MediationConfig(n_boot=B) in the Python API gives a bootstrap SE")
NO_SE = "no SE: not available for this estimator and effect"


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


def mediation_report(result):
    """``result.to_frame()`` with a ``note`` column saying why an SE or CI is NaN.

    Returns:
      (frame, status, status_text): the DataFrame (estimator, effect, estimate, se, ci_low,
      ci_high, note; only the defined cells), the status int and the status in words.
    """
    frame = result.to_frame()
    notes = []
    for est, se in zip(frame["estimator"], frame["se"].to_numpy(dtype=float)):
        notes.append("" if np.isfinite(se) else (NO_SE_DM if est == "DM" else NO_SE))
    frame = frame.assign(note=notes)
    status = int(np.asarray(result.diagnostics.status))
    return frame, status, mediation_status_text(status)
