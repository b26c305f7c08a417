"""The ``Trajectories`` data model: N trajectories of T steps of (S, A, M, R, S').

A ``Trajectories`` is a NamedTuple of arrays, hence a pytree: it passes through
``jit``, ``vmap`` (a leading replication axis) and ``lax.map``. Ragged data are
padded to a common T and described by ``mask`` (1 for an observed step, 0 for
padding); padding must be at the end of each trajectory.

Validation happens here, at the boundary, in numpy, before anything is traced.
"""

from __future__ import annotations

from typing import NamedTuple, Sequence

import numpy as np

from jaxmed._src.validation import (as_float as _as_float, check_finite_where,
                                   check_long_dataframe, check_values_in, plain as _plain)

__all__ = ["Trajectories", "trajectories_from_arrays", "trajectories_from_dataframe",
           "trajectories_to_dataframe", "validate_trajectories", "time_order"]


class Trajectories(NamedTuple):
    """One dataset of N trajectories of length T.

    Attributes:
      state: ``(N, T, dS)`` states S_t.
      action: ``(N, T)`` binary actions A_t in {0, 1} (float).
      mediator: ``(N, T, dM)`` mediators M_t.
      reward: ``(N, T)`` rewards R_t.
      next_state: ``(N, T, dS)`` next states S_{t+1}.
      mask: ``(N, T)`` 1.0 for observed steps, 0.0 for padding.
    """

    state: object
    action: object
    mediator: object
    reward: object
    next_state: object
    mask: object

    def __repr__(self) -> str:
        """A short summary (N, T, dimensions, observed steps, dtype), not every array."""
        try:
            lead = tuple(self.action.shape[:-2])
            n, t = self.action.shape[-2:]
            ds, dm = self.state.shape[-1], self.mediator.shape[-1]
            text = (f"Trajectories(N={n}, T={t}, state_dim={ds}, mediator_dim={dm}"
                    + (f", batch={lead}" if lead else ""))
            try:
                observed = int(np.asarray(self.mask).sum())
                text += f", observed_steps={observed}"
            except Exception:  # a tracer inside jit: no values to count
                pass
            return text + f", dtype={np.dtype(self.state.dtype).name})"
        except Exception:  # a pytree of non-arrays (e.g. vmap axis specs): the plain form
            fields = ", ".join(f"{k}={v!r}" for k, v in zip(self._fields, self))
            return f"Trajectories({fields})"

    @property
    def n_trajectories(self) -> int:
        return self.action.shape[-2]

    @property
    def horizon(self) -> int:
        return self.action.shape[-1]

    @property
    def state_dim(self) -> int:
        return self.state.shape[-1]

    @property
    def mediator_dim(self) -> int:
        return self.mediator.shape[-1]

    @property
    def s0(self):
        """Initial states ``(N, dS)``."""
        return self.state[..., 0, :]

    def flat(self):
        """Trajectory-major flat view: row k = i*T + t (spec mediation.md §1.1).

        Returns a dict of arrays with leading dimension N*T.
        """
        n, t = self.action.shape[-2:]
        ds, dm = self.state.shape[-1], self.mediator.shape[-1]
        lead = self.action.shape[:-2]
        return dict(
            state=self.state.reshape(lead + (n * t, ds)),
            action=self.action.reshape(lead + (n * t,)),
            mediator=self.mediator.reshape(lead + (n * t, dm)),
            reward=self.reward.reshape(lead + (n * t,)),
            next_state=self.next_state.reshape(lead + (n * t, ds)),
            mask=self.mask.reshape(lead + (n * t,)),
        )


def validate_trajectories(data: Trajectories, *, check_next_state: bool = True,
                          atol: float = 1e-10) -> None:
    """Raises ``ValueError`` naming the argument and the offending index if ``data`` is invalid.

    Checks: dimensions and matching shapes; N >= 1 and T >= 1; mask in {0,1} with
    padding only at the end and at least one observed step per trajectory; finite
    values on observed steps; binary actions; and, if ``check_next_state``,
    ``next_state[i, t] == state[i, t+1]`` wherever both steps are observed.
    """
    state = _as_float("state", data.state, 3)
    n, t, ds = state.shape
    if n == 0:
        raise ValueError("state: expected at least one trajectory (N >= 1), got N = 0")
    if t == 0:
        raise ValueError("state: expected at least one time step (T >= 1), got T = 0")
    if ds == 0:
        raise ValueError("state: expected a state dimension dS >= 1, got 0")
    action = _as_float("action", data.action, 2)
    mediator = _as_float("mediator", data.mediator, 3)
    reward = _as_float("reward", data.reward, 2)
    next_state = _as_float("next_state", data.next_state, 3)
    mask = _as_float("mask", data.mask, 2)
    for name, arr, want in (("action", action, (n, t)), ("reward", reward, (n, t)),
                            ("mask", mask, (n, t)), ("next_state", next_state, (n, t, ds))):
        if arr.shape != want:
            raise ValueError(f"{name}: expected shape {want} to match state {state.shape}, got {arr.shape}")
    if mediator.shape[:2] != (n, t) or mediator.shape[2] == 0:
        raise ValueError(f"mediator: expected shape ({n}, {t}, dM) with dM >= 1, got {mediator.shape}")
    units = ("trajectory", "time")
    check_values_in("mask", mask, (0.0, 1.0), units)
    if (np.diff(mask, axis=1) > 0).any():
        i = int(np.argwhere((np.diff(mask, axis=1) > 0).any(axis=1))[0, 0])
        raise ValueError(f"mask: padding must come after the observed steps; trajectory {i} has an "
                         f"observed step after a padded one")
    if (mask.sum(axis=1) == 0).any():
        i = int(np.argwhere(mask.sum(axis=1) == 0)[0, 0])
        raise ValueError(f"mask: trajectory {i} has no observed step")
    for name, arr in (("state", state), ("action", action), ("mediator", mediator),
                      ("reward", reward), ("next_state", next_state)):
        check_finite_where(name, arr, mask, units)
    check_values_in("action", action, (0.0, 1.0), units, where=mask.astype(bool),
                    what="binary actions")
    if check_next_state and t > 1:
        both = (mask[:, :-1] * mask[:, 1:]).astype(bool)
        diff = np.abs(next_state[:, :-1] - state[:, 1:]).max(axis=-1)
        bad = both & ~(diff <= atol * (1.0 + np.abs(state[:, 1:]).max(axis=-1)))
        if bad.any():
            i, k = np.argwhere(bad)[0]
            raise ValueError(f"next_state: next_state[{i}, {k}] = {next_state[i, k].tolist()} is "
                             f"inconsistent with the following state state[{i}, {k + 1}] = "
                             f"{state[i, k + 1].tolist()}")


def trajectories_from_arrays(state, action, mediator, reward, next_state=None, mask=None, *,
                             check_next_state: bool = True, dtype=np.float64) -> Trajectories:
    """Builds validated ``Trajectories`` from arrays.

    Args:
      state: ``(N, T, dS)`` or ``(N, T)`` (dS = 1) states. If ``next_state`` is None,
        ``state`` may instead hold T+1 steps, the last being the final next state.
      action: ``(N, T)`` binary actions.
      mediator: ``(N, T, dM)`` or ``(N, T)`` (dM = 1) mediators.
      reward: ``(N, T)`` rewards.
      next_state: ``(N, T, dS)`` next states; None derives it from ``state``.
      mask: ``(N, T)`` observed-step indicator (default all ones).
      check_next_state: check ``next_state[:, t] == state[:, t+1]``.
      dtype: float64 (default) or float32; arrays are returned as numpy arrays of
        this dtype (convert with ``jnp.asarray`` inside a precision context).

    Returns:
      A validated ``Trajectories``.

    >>> import numpy as np
    >>> s = np.arange(4.0).reshape(1, 4)
    >>> d = trajectories_from_arrays(s, [[0, 1, 0]], np.zeros((1, 3)), [[1., 2., 3.]])
    >>> d.next_state[0, :, 0].tolist()
    [1.0, 2.0, 3.0]
    """
    def lift(name, x):
        arr = np.asarray(x, dtype=np.float64) if x is not None else None
        if arr is not None and arr.ndim == 2:
            arr = arr[..., None]
        if arr is not None and arr.ndim != 3:
            raise ValueError(f"{name}: expected shape (N, T, d) or (N, T), got {arr.shape}")
        return arr

    state = lift("state", state)
    mediator = lift("mediator", mediator)
    action = _as_float("action", action, 2)
    reward = _as_float("reward", reward, 2)
    t = action.shape[1]
    if next_state is None:
        if state.shape[1] != t + 1:
            raise ValueError(f"state: without next_state, expected T+1 = {t + 1} steps, got "
                             f"{state.shape[1]}")
        next_state = state[:, 1:]
        state = state[:, :-1]
    else:
        next_state = lift("next_state", next_state)
    if mask is None:
        mask = np.ones(action.shape)
    data = Trajectories(state, action, mediator, reward, next_state, _as_float("mask", mask, 2))
    validate_trajectories(data, check_next_state=check_next_state)
    keep = data.mask.astype(bool)
    cleaned = [np.where(keep[..., None] if x.ndim == 3 else keep, x, 0.0) for x in data[:5]]
    return Trajectories(*[np.asarray(x, dtype=dtype) for x in (*cleaned, data.mask)])


def _show(v) -> str:
    v = _plain(v)
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


def _column_names(name: str, value) -> list:
    """Column names: a string is one column (``state="ss"`` is the column ``ss``)."""
    if isinstance(value, str):
        return [value]
    names = list(value)
    if not names:
        raise ValueError(f"{name}: expected at least one column name, got {value!r}")
    return names


def _rows(mask: np.ndarray, limit: int = 10) -> str:
    rows = np.flatnonzero(mask)
    more = f" and {rows.size - limit} more" if rows.size > limit else ""
    return f"{rows[:limit].tolist()}{more}"


def _check_ids_and_times(df, id: str, time: str) -> None:
    """Raises if an id or a time is missing (NaN) on some row, naming the rows (0-based)."""
    import pandas as pd

    if not isinstance(df, pd.DataFrame):
        return  # check_long_dataframe names the problem
    for arg, col, what in (("id", id, "id"), ("time", time, "time")):
        if col in df.columns:
            missing = df[col].isna().to_numpy()
            if missing.any():
                raise ValueError(f"{arg}: {int(missing.sum())} row(s) have no {what} (NaN) in "
                                 f"column {col!r}, at rows {_rows(missing)} (0-based, header not "
                                 f"counted): drop or fill them")


_NATURAL = "numbers, datetimes, or text made of one common prefix and an integer (t0, t1, ..., t10)"


def time_order(values, name: str = "time"):
    """The numbers by which a time column is ordered.

    Numeric, datetime and timedelta columns order as they are; text that parses as
    numbers orders numerically; text made of one common prefix and a non-negative integer
    (``t0, t1, ..., t10``, ``week2``) orders by the integer (natural order, not
    alphabetical: t2 before t10). Any other text is refused.

    >>> import pandas as pd
    >>> time_order(pd.Series(["t10", "t2", "t0"])).tolist()
    [10, 2, 0]
    """
    import re

    import pandas as pd

    col = pd.Series(values)
    if (pd.api.types.is_numeric_dtype(col) or pd.api.types.is_datetime64_any_dtype(col)
            or pd.api.types.is_timedelta64_dtype(col)):
        return col
    text = col.astype(str).str.strip()
    numbers = pd.to_numeric(text, errors="coerce")
    if numbers.notna().all():
        return numbers
    parts = text.str.extract(r"^(\D*?)(\d+)$")
    if parts[1].notna().all() and parts[0].nunique() == 1:
        return parts[1].astype(np.int64)
    bad = text[parts[1].isna()] if parts[1].isna().any() else text
    examples = list(dict.fromkeys(bad.tolist()))[:3]
    raise ValueError(f"{name}: cannot order the text times {examples} (e.g.); expected {_NATURAL}, "
                     f"ordered by the integer; convert the column first (e.g. pd.to_datetime)")


def _check_no_gaps(df, id: str, time: str, order: str) -> None:
    """Raises if an id's times (sorted) jump by more than the data's smallest time step."""
    import pandas as pd

    col = df[order]
    if not (pd.api.types.is_numeric_dtype(col) or pd.api.types.is_datetime64_any_dtype(col)):
        return
    same_id = (df[id].to_numpy()[1:] == df[id].to_numpy()[:-1])
    diffs = col.diff().to_numpy()[1:][same_id]
    positive = diffs[diffs > diffs.dtype.type(0)] if diffs.size else diffs
    if positive.size == 0:
        return
    step = positive.min()
    jumps = np.flatnonzero(same_id)[diffs > step]
    if jumps.size:
        row = int(jumps[0]) + 1
        converted = not (pd.api.types.is_numeric_dtype(df[time])
                         or pd.api.types.is_datetime64_any_dtype(df[time]))
        step_text = f"{_show(step)} in the integer of the times" if converted else _show(step)
        raise ValueError(f"time: id {_plain(df[id].iloc[row])!r} jumps from time "
                         f"{_show(df[time].iloc[row - 1])} to {_show(df[time].iloc[row])} (the "
                         f"data's time step is {step_text}): a step is missing and its transition "
                         f"cannot be formed; fill or split the trajectory, or pass gaps='ignore' "
                         f"to treat consecutive rows as consecutive steps")


def _check_binary_actions(df, action: str, id: str, time: str) -> None:
    """Raises naming the id and time of the first action outside {0, 1}."""
    import pandas as pd

    values = pd.to_numeric(df[action], errors="coerce").to_numpy(np.float64)
    bad = ~np.isin(values, (0.0, 1.0))
    if bad.any():
        row = int(np.argmax(bad))
        raise ValueError(f"action: expected binary actions in {{0, 1}} in column {action!r}, got "
                         f"{_show(df[action].iloc[row])} at id {_plain(df[id].iloc[row])!r}, time "
                         f"{_show(df[time].iloc[row])} (row {row})")


def trajectories_from_dataframe(df, *, state: Sequence[str], mediator: Sequence[str],
                                action: str = "action", reward: str = "reward", id: str = "id",
                                time: str = "time", next_state: Sequence[str] | None = None,
                                gaps: str = "raise", dtype=np.float64) -> Trajectories:
    """Builds ``Trajectories`` from a long-format DataFrame, one row per (id, time).

    Rows are sorted by (id, time) and each id becomes one trajectory; shorter ones are
    padded and masked. If ``next_state`` columns are given they are used; otherwise the
    next state of a row is the state of the same id's next row, and each id's last row
    supplies only that final state (its action, mediator and reward are dropped).

    So an id with k rows gives k - 1 steps: 20 rows per id give T = 19 (pass
    ``next_state`` columns to use every row).

    Consecutive rows of an id are consecutive decision steps. The ``time`` column is
    ordered by ``time_order``: numbers and datetimes as they are, text such as
    ``t0, t1, ..., t10`` by its integer (never alphabetically); other text is refused.
    The time is then checked for gaps: the time step is the smallest positive
    difference between consecutive times of an id (over all ids), and a larger jump
    within an id means a missing step, whose transition cannot be formed. A row with no
    id or no time (NaN) is an error naming the rows.

    Args:
      df: a pandas DataFrame.
      state: names of the state columns (a single string is one column name).
      mediator: names of the mediator columns (a single string is one column name).
      action, reward, id, time: column names.
      next_state: optional names of next-state columns.
      gaps: ``"raise"`` (default): a ``ValueError`` naming the first id with a missing
        step; ``"ignore"``: take consecutive rows as consecutive steps whatever their
        times (for irregularly timed decisions).
      dtype: float64 (default) or float32.

    Returns:
      Validated ``Trajectories``.

    >>> import pandas as pd
    >>> df = pd.DataFrame(dict(id=[0, 0, 0], time=[0, 1, 2], s=[0.5, 1.0, 2.0], a=[1, 0, 1],
    ...                        m=[0.1, 0.2, 0.3], r=[1.0, 2.0, 3.0]))
    >>> d = trajectories_from_dataframe(df, state=["s"], mediator=["m"], action="a", reward="r")
    >>> d.next_state[0, :, 0].tolist()
    [1.0, 2.0]
    """
    if gaps not in ("raise", "ignore"):
        raise ValueError(f"gaps: expected 'raise' or 'ignore', got {gaps!r}")
    state, mediator = _column_names("state", state), _column_names("mediator", mediator)
    next_state = None if next_state is None else _column_names("next_state", next_state)
    _check_ids_and_times(df, id, time)
    check_long_dataframe(
        df, {"id/time": [id, time], "state": state, "mediator": mediator,
             "action/reward": [action, reward], "next_state": next_state or []},
        state + mediator + [action, reward] + (next_state or []), id=id, time=time)
    _check_binary_actions(df, action, id, time)
    order = "__jaxmed_time_order__"
    df = df.assign(**{order: time_order(df[time], "time").to_numpy()})
    df = df.sort_values([id, order], kind="stable")
    if gaps == "raise":
        _check_no_gaps(df, id, time, order)
    groups = [g for _, g in df.groupby(id, sort=True)]
    lengths = [len(g) - (0 if next_state is not None else 1) for g in groups]
    if max(lengths) <= 0:
        raise ValueError("df: every id has a single row; without next_state columns at least two "
                         "rows per id are needed")
    n, t = len(groups), max(lengths)
    ds, dm = len(state), len(mediator)
    out = dict(state=np.zeros((n, t, ds)), action=np.zeros((n, t)), mediator=np.zeros((n, t, dm)),
               reward=np.zeros((n, t)), next_state=np.zeros((n, t, ds)), mask=np.zeros((n, t)))
    for i, (g, length) in enumerate(zip(groups, lengths)):
        if length <= 0:
            continue
        s = g[state].to_numpy(np.float64)
        out["state"][i, :length] = s[:length]
        out["action"][i, :length] = g[action].to_numpy(np.float64)[:length]
        out["mediator"][i, :length] = g[mediator].to_numpy(np.float64)[:length]
        out["reward"][i, :length] = g[reward].to_numpy(np.float64)[:length]
        out["next_state"][i, :length] = (g[next_state].to_numpy(np.float64) if next_state
                                         else s[1:length + 1])
        out["mask"][i, :length] = 1.0
    empty = [_plain(g[id].iloc[0]) for g, length in zip(groups, lengths) if length <= 0]
    if empty:
        raise ValueError(f"df: id(s) {empty[:5]} have a single row and no transition; drop them or "
                         f"pass next_state columns")
    return trajectories_from_arrays(out["state"], out["action"], out["mediator"], out["reward"],
                                    out["next_state"], out["mask"], dtype=dtype)


def trajectories_to_dataframe(data: Trajectories, *, state_names: Sequence[str] | None = None,
                              mediator_names: Sequence[str] | None = None):
    """Long-format DataFrame (one row per observed step) with id, time, S, A, M, R, S'.

    Column names default to ``s0, s1, ...``, ``m0, ...`` and ``next_s0, ...``.
    Round-trips with ``trajectories_from_dataframe(..., next_state=[...])``.
    """
    import pandas as pd

    state = np.asarray(data.state)
    n, t, ds = state.shape
    dm = np.asarray(data.mediator).shape[-1]
    sn = list(state_names) if state_names is not None else [f"s{j}" for j in range(ds)]
    mn = list(mediator_names) if mediator_names is not None else [f"m{j}" for j in range(dm)]
    if len(sn) != ds:
        raise ValueError(f"state_names: expected {ds} names, got {len(sn)}")
    if len(mn) != dm:
        raise ValueError(f"mediator_names: expected {dm} names, got {len(mn)}")
    keep = np.asarray(data.mask).reshape(-1).astype(bool)
    ids, times = np.meshgrid(np.arange(n), np.arange(t), indexing="ij")
    cols = {"id": ids.reshape(-1)[keep], "time": times.reshape(-1)[keep]}
    for j, c in enumerate(sn):
        cols[c] = state[..., j].reshape(-1)[keep]
    cols["action"] = np.asarray(data.action).reshape(-1)[keep].astype(np.int64)
    for j, c in enumerate(mn):
        cols[c] = np.asarray(data.mediator)[..., j].reshape(-1)[keep]
    cols["reward"] = np.asarray(data.reward).reshape(-1)[keep]
    for j, c in enumerate(sn):
        cols["next_" + c] = np.asarray(data.next_state)[..., j].reshape(-1)[keep]
    return pd.DataFrame(cols)
