"""Named status bits of every jaxmed result: the single source of truth for their meaning.

Inside ``jit`` a failure is an int32 bit field ``status`` (0 = ok) in the result, never an
exception. This module gives the bits names (``MediationStatus``, ``LongtermStatus``, both
``enum.IntFlag``) and turns a code into words (:func:`describe`, :func:`status_text`), for
``MediationResult.to_frame()``, the CLI and study tables. The study store uses ``-1`` for a
replication that is not in the store (``"missing"``).

>>> describe(MediationStatus.POOR_OVERLAP | MediationStatus.HUGE_ESTIMATE)
['poor_overlap', 'huge_estimate']
>>> status_text(0)
'ok'
>>> status_text(2, kind="longterm")
'nonfinite'
"""

from __future__ import annotations

import enum

__all__ = ["MediationStatus", "LongtermStatus", "describe", "status_text", "STATUS_KINDS",
           "MEDIATION_STATUS_BITS", "mediation_status_text"]


class MediationStatus(enum.IntFlag):
    """Status bits of the mediation pipeline (``MediationResult.status``, its ``EffectTable``).

    Attributes:
      OK: 0, nothing flagged.
      NONFINITE: an MR or DM estimate is not finite (NaN/inf; a singular or exploding fit).
      Q_ILL_CONDITIONED: an LSTD matrix of the Q-functions has condition number > 1e12.
      RATIO_ILL_CONDITIONED: a state-ratio normal matrix has condition number > 1e12.
      POOR_OVERLAP: the fitted behaviour policy gives π̂_b(A|S) < 1e-3 or > 1 − 1e-3 on an
        observed step: an action has (almost) no support there, the effects are not
        identified from the data. Every estimate is NaN.
      LOW_RATIO_ESS: a state-ratio weight vector ω̂ has an effective sample size below
        max(10, 1% of the observed steps): a handful of steps carry the weighted estimators.
      HUGE_ESTIMATE: an estimate exceeds 1e6 · max|R| (observed rewards) in magnitude or is
        infinite; such entries are NaN (an average-reward effect is at most 2 max|R|).
      SE_NONFINITE: an estimate is finite but the standard error asked for it (``se``: the
        cluster SE, DM's bootstrap SE with ``n_boot > 1``, or the IJ SE of the rows in
        ``ij_estimators``) is not: the estimate is kept, its SE and CI are NaN, and it has no
        usable uncertainty. SEs not asked for (DM without a bootstrap, rows left out of
        ``ij_estimators``) flag nothing.
    """

    OK = 0
    NONFINITE = 1
    Q_ILL_CONDITIONED = 2
    RATIO_ILL_CONDITIONED = 4
    POOR_OVERLAP = 8
    LOW_RATIO_ESS = 16
    HUGE_ESTIMATE = 32
    SE_NONFINITE = 64


class LongtermStatus(enum.IntFlag):
    """Status bits of the long-term estimators (``jaxmed.longterm``; ``values.STATUS_*``).

    Attributes:
      OK: 0, nothing flagged.
      UNSTABLE: some fitted transition matrix has spectral radius >= 1 − 1e-6 (no stationary
        mean; the values are meaningless).
      NONFINITE: a non-finite estimate (singular system).
    """

    OK = 0
    UNSTABLE = 1
    NONFINITE = 2


STATUS_KINDS = {"mediation": MediationStatus, "longterm": LongtermStatus}


def describe(code, kind: str = "mediation") -> list[str]:
    """The names of the bits set in ``code`` (lower case), ``["ok"]`` for 0.

    Args:
      code: an int status (a numpy/JAX scalar is fine); ``-1`` is a replication missing from
        a study store (``["missing"]``).
      kind: ``"mediation"`` (default) or ``"longterm"``.

    Returns:
      A list of words, one per set bit, in bit order; unknown bits read ``"bit_<value>"``.
    """
    if kind not in STATUS_KINDS:
        raise ValueError(f"kind: expected one of {sorted(STATUS_KINDS)}, got {kind!r}")
    code = int(code)
    if code == -1:
        return ["missing"]
    if code < -1:
        raise ValueError(f"code: expected a status >= -1, got {code}")
    if code == 0:
        return ["ok"]
    flags = STATUS_KINDS[kind]
    words = []
    bit = 1
    while bit <= code:
        if code & bit:
            name = flags._value2member_map_.get(bit)
            words.append(name.name.lower() if name is not None else f"bit_{bit}")
        bit <<= 1
    return words


def status_text(code, kind: str = "mediation") -> str:
    """:func:`describe` joined with ``", "`` (one cell of a table)."""
    return ", ".join(describe(code, kind))


# bit -> a sentence for people (CLI output, ``estimate --out``); the names are in describe().
MEDIATION_STATUS_BITS = {
    MediationStatus.NONFINITE: "a non-finite estimate (NaN or inf)",
    MediationStatus.Q_ILL_CONDITIONED:
        "an LSTD (Q-function) matrix is ill-conditioned (condition number > 1e12)",
    MediationStatus.RATIO_ILL_CONDITIONED:
        "a state-ratio normal matrix is ill-conditioned (condition number > 1e12)",
    MediationStatus.POOR_OVERLAP:
        "poor overlap: the fitted behaviour policy gives an action probability below 1e-3 "
        "on an observed step, so the effects are not identified (estimates are NaN)",
    MediationStatus.LOW_RATIO_ESS:
        "a state-ratio weight vector has a low effective sample size "
        "(below max(10, 1% of the steps))",
    MediationStatus.HUGE_ESTIMATE:
        "an estimate exceeded 1e6 x max|reward| and was set to NaN",
    MediationStatus.SE_NONFINITE:
        "a finite estimate has a non-finite standard error (its SE and CI are NaN)",
}


def mediation_status_text(status) -> str:
    """The mediation status code as a sentence (the CLI's wording of :func:`describe`).

    >>> mediation_status_text(0)
    'ok (every solve succeeded)'
    >>> mediation_status_text(5)
    'problem: a non-finite estimate (NaN or inf); a state-ratio normal matrix is ill-conditioned (condition number > 1e12)'
    """
    status = int(status)
    if status == 0:
        return "ok (every solve succeeded)"
    if status == -1:
        return "missing (not computed)"
    words = [text for bit, text in MEDIATION_STATUS_BITS.items() if status & bit]
    unknown = status & ~sum(int(b) for b in MEDIATION_STATUS_BITS)
    if unknown:
        words.append(f"unknown status bits {unknown}")
    return "problem: " + "; ".join(words)
