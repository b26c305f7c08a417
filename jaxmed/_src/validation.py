"""Boundary checks shared by the data models (``Trajectories``, ``Panel``).

Every check runs in numpy, before anything is traced, and raises ``ValueError`` whose
message starts with the argument (or column) name, then what was expected and where.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

__all__ = ["as_float", "plain", "check_values_in", "check_finite_where", "check_long_dataframe"]


def as_float(name: str, x, ndim: int) -> np.ndarray:
    """``x`` as a float64 numpy array with ``ndim`` dimensions, or a ``ValueError``."""
    try:
        arr = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise ValueError(f"{name}: expected a numeric array, got {type(x).__name__} ({e})") from None
    if arr.ndim != ndim:
        raise ValueError(f"{name}: expected {ndim} dimensions, got shape {arr.shape}")
    return arr


def plain(x):
    """numpy scalars as Python scalars, so messages read ``nan`` not ``np.float64(nan)``."""
    return x.item() if isinstance(x, np.generic) else x


def _where(index, units: Sequence[str]) -> str:
    return ", ".join(f"{u} {int(i)}" for u, i in zip(units, index))


def check_values_in(name: str, arr: np.ndarray, allowed: tuple, units: Sequence[str], *,
                    where: np.ndarray | None = None, what: str = "values") -> None:
    """Raises unless every entry of ``arr`` (where ``where`` is true) is one of ``allowed``.

    ``units`` names the axes in the message (e.g. ``("trajectory", "time")``).
    """
    bad = ~np.isin(arr, allowed)
    if where is not None:
        bad &= where
    if bad.any():
        index = tuple(np.argwhere(bad)[0])
        shown = "{" + ", ".join(f"{a:g}" for a in allowed) + "}"
        raise ValueError(f"{name}: expected {what} in {shown}, got {plain(arr[index])} at "
                         f"{_where(index, units)}")


def check_finite_where(name: str, arr: np.ndarray, mask: np.ndarray, units: Sequence[str],
                       *, what: str = "step") -> None:
    """Raises if ``arr`` has a NaN/inf where ``mask`` is 1 (a trailing feature axis is reduced)."""
    bad = ~np.isfinite(arr)
    if bad.ndim == mask.ndim + 1:
        bad = bad.any(axis=-1)
    bad &= mask.astype(bool)
    if bad.any():
        index = tuple(np.argwhere(bad)[0])
        raise ValueError(f"{name}: non-finite value (NaN or inf) at {_where(index, units)}; "
                         f"{int(bad.sum())} such {what}(s) in all")


def check_long_dataframe(df, columns: dict[str, Sequence[str]], numeric: Sequence[str], *,
                         id: str, time: str) -> None:
    """Checks a long-format (one row per id and time) DataFrame before it is reshaped.

    Args:
      df: the DataFrame.
      columns: argument name -> column names it refers to (missing ones are reported
        under that argument's name).
      numeric: columns that must be numeric and finite on every row.
      id, time: the identifier and time columns; (id, time) must be unique.
    """
    import pandas as pd  # optional dependency, imported lazily

    if not isinstance(df, pd.DataFrame):
        raise ValueError(f"df: expected a pandas DataFrame, got {type(df).__name__}")
    if len(df) == 0:
        raise ValueError("df: the DataFrame is empty")
    for arg, names in columns.items():
        missing = [c for c in names if c not in df.columns]
        if missing:
            raise ValueError(f"{arg}: column(s) {missing} not in the DataFrame "
                             f"(columns: {list(df.columns)})")
    duplicated = df.duplicated([id, time]).to_numpy()
    if duplicated.any():
        row = int(np.argmax(duplicated))
        raise ValueError(f"df: duplicate (id, time) at row {row}: {df.iloc[row][[id, time]].tolist()}")
    for c in numeric:
        vals = pd.to_numeric(df[c], errors="coerce").to_numpy(dtype=np.float64)
        if not np.isfinite(vals).all():
            row = int(np.argmax(~np.isfinite(vals)))
            raise ValueError(f"{c}: non-finite or non-numeric value {plain(df[c].iloc[row])!r} at "
                             f"row {row} (id={plain(df[id].iloc[row])!r}, "
                             f"time={plain(df[time].iloc[row])!r})")
