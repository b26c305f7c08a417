"""The status int of a mediation fit, in words (one place, so a named flags type can replace it).

``PipelineDiagnostics.status`` is a bit field (``jaxmed._src.mediation.pipeline``):
1 a non-finite estimate, 2 an LSTD matrix with condition number above 1e12, 4 a ratio
normal matrix with condition number above 1e12; 0 means every solve succeeded.
"""

from __future__ import annotations

__all__ = ["MEDIATION_STATUS_BITS", "mediation_status_text"]

# bit -> meaning; the bits are those of jaxmed._src.mediation.pipeline (STATUS_*)
MEDIATION_STATUS_BITS = {
    1: "a non-finite estimate (NaN or inf)",
    2: "an LSTD (Q-function) matrix is ill-conditioned (condition number > 1e12)",
    4: "a state-ratio normal matrix is ill-conditioned (condition number > 1e12)",
}


def mediation_status_text(status: int) -> str:
    """The mediation status code in words.

    >>> mediation_status_text(0)
    'ok (every solve succeeded)'
    >>> mediation_status_text(5)
    'problem: a non-finite estimate (NaN or inf); a state-ratio normal matrix is ill-conditioned (condition number > 1e12)'
    """
    status = int(status)
    if status == 0:
        return "ok (every solve succeeded)"
    words = [text for bit, text in MEDIATION_STATUS_BITS.items() if status & bit]
    unknown = status & ~sum(MEDIATION_STATUS_BITS)
    if unknown:
        words.append(f"unknown status bits {unknown}")
    return "problem: " + "; ".join(words)
