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

__all__ = ["Trajectories", "trajectories_from_arrays", "trajectories_from_dataframe",
           "trajectories_to_dataframe", "validate_trajectories"]


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


def _as_float(name: str, x, ndim: int) -> np.ndarray:
    try:
        arr = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise ValueError(f"{name}: expected a numeric array, got {type(x).__name__} ({e})") from None
    if arr.ndim != ndim:
        raise ValueError(f"{name}: expected {ndim} dimensions, got shape {arr.shape}")
    return arr


def _check_finite(name: str, arr: np.ndarray, mask: np.ndarray) -> None:
    bad = ~np.isfinite(arr)
    if bad.ndim == 3:
        bad = bad.any(axis=-1)
    bad &= mask.astype(bool)
    if bad.any():
        i, t = np.argwhere(bad)[0]
        raise ValueError(f"{name}: non-finite value (NaN or inf) at trajectory {i}, time {t}; "
                         f"{int(bad.sum())} such step(s) in all")


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
    if not np.isin(mask, (0.0, 1.0)).all():
        i, k = np.argwhere(~np.isin(mask, (0.0, 1.0)))[0]
        raise ValueError(f"mask: expected values in {{0, 1}}, got {mask[i, k]} at trajectory {i}, time {k}")
    if (np.diff(mask, axis=1) > 0).any():
        i = int(np.argwhere((np.diff(mask, axis=1) > 0).any(axis=1))[0, 0])
        raise ValueError(f"mask: padding must come after the observed steps; trajectory {i} has an "
                         f"observed step after a padded one")
    if (mask.sum(axis=1) == 0).any():
        i = int(np.argwhere(mask.sum(axis=1) == 0)[0, 0])
        raise ValueError(f"mask: trajectory {i} has no observed step")
    for name, arr in (("state", state), ("action", action), ("mediator", mediator),
                      ("reward", reward), ("next_state", next_state)):
        _check_finite(name, arr, mask)
    bad = ~np.isin(action, (0.0, 1.0)) & mask.astype(bool)
    if bad.any():
        i, k = np.argwhere(bad)[0]
        raise ValueError(f"action: expected binary actions in {{0, 1}}, got {action[i, k]} at "
                         f"trajectory {i}, time {k}")
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


def _plain(x):
    """numpy scalars as Python scalars, so messages read ``nan`` not ``np.float64(nan)``."""
    return x.item() if isinstance(x, np.generic) else x


def _columns(df, names: Sequence[str], arg: str) -> None:
    missing = [c for c in names if c not in df.columns]
    if missing:
        raise ValueError(f"{arg}: column(s) {missing} not in the DataFrame (columns: {list(df.columns)})")


def trajectories_from_dataframe(df, *, state: Sequence[str], mediator: Sequence[str],
                                action: str = "action", reward: str = "reward", id: str = "id",
                                time: str = "time", next_state: Sequence[str] | None = None,
                                dtype=np.float64) -> Trajectories:
    """Builds ``Trajectories`` from a long-format DataFrame, one row per (id, time).

    Rows are sorted by (id, time) and each id becomes one trajectory; shorter ones are
    padded and masked. If ``next_state`` columns are given they are used; otherwise the
    next state of a row is the state of the same id's next row, and each id's last row
    supplies only that final state (its action, mediator and reward are dropped).

    Args:
      df: a pandas DataFrame.
      state: names of the state columns.
      mediator: names of the mediator columns.
      action, reward, id, time: column names.
      next_state: optional names of next-state columns.
      dtype: float64 (default) or float32.

    Returns:
      Validated ``Trajectories``.
    """
    import pandas as pd  # optional dependency, imported lazily

    if not isinstance(df, pd.DataFrame):
        raise ValueError(f"df: expected a pandas DataFrame, got {type(df).__name__}")
    if len(df) == 0:
        raise ValueError("df: the DataFrame is empty")
    state, mediator = list(state), list(mediator)
    _columns(df, [id, time], "id/time")
    _columns(df, state, "state")
    _columns(df, mediator, "mediator")
    _columns(df, [action, reward], "action/reward")
    if next_state is not None:
        next_state = list(next_state)
        _columns(df, next_state, "next_state")
    if df.duplicated([id, time]).any():
        row = int(np.argmax(df.duplicated([id, time]).to_numpy()))
        raise ValueError(f"df: duplicate (id, time) at row {row}: {df.iloc[row][[id, time]].tolist()}")
    for c in state + mediator + [action, reward] + (next_state or []):
        vals = pd.to_numeric(df[c], errors="coerce").to_numpy(dtype=np.float64)
        if not np.isfinite(vals).all():
            row = int(np.argmax(~np.isfinite(vals)))
            raise ValueError(f"{c}: non-finite or non-numeric value {_plain(df[c].iloc[row])!r} at "
                             f"row {row} (id={_plain(df[id].iloc[row])!r}, "
                             f"time={_plain(df[time].iloc[row])!r})")
    df = df.sort_values([id, time], kind="stable")
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
