"""``StudyResult``: the per-replication output of a Monte Carlo study, in memory."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

__all__ = ["StudyResult"]


@dataclasses.dataclass(frozen=True, eq=False)
class StudyResult:
    """Per-replication estimates of a study over a grid of (n, horizon) cells.

    Attributes:
      design: design name.
      estimator: ``EstimatorSpec.name``.
      estimators: row names (E).
      effects: column names (K).
      grid: tuple of (n, horizon) cells (C).
      reps: replications per cell (R).
      seed: the integer seed, or ``None`` when a key was passed (see ``key_data``).
      key_data: the study key's raw data (list of uint32).
      estimate, se, ci_low, ci_high: ``(C, R, E, K)`` float arrays.
      status: ``(C, R)`` int32; 0 ok, estimator-specific codes > 0, ``-1`` when the
        replication is not in the store (another process's share in a multi-host study).
      truth: ``{effect: true value}`` (empty if unknown).
      wall_s: wall-clock seconds of this call (compilation included).
      compile_s: seconds spent tracing and compiling (part of ``wall_s``).
      n_computed: replications computed by this call (the rest were loaded from ``out``).
      batch_size: replications vmapped together per device (fixes the numerics).
      chunk_size: replications per device call and per chunk file.
      devices: number of devices used.
      device: description of the devices (platform and kind).
      dtype: ``"float64"`` or ``"float32"``.
      jax_version: ``jax.__version__``.
    """

    design: str
    estimator: str
    estimators: tuple[str, ...]
    effects: tuple[str, ...]
    grid: tuple[tuple[int, int], ...]
    reps: int
    seed: int | None
    key_data: list
    estimate: np.ndarray
    se: np.ndarray
    ci_low: np.ndarray
    ci_high: np.ndarray
    status: np.ndarray
    truth: dict[str, float]
    wall_s: float = float("nan")
    compile_s: float = float("nan")
    n_computed: int = 0
    batch_size: int = 1
    chunk_size: int = 1
    devices: int = 1
    device: str = ""
    dtype: str = "float64"
    jax_version: str = ""

    def to_frame(self):
        """Long-format pandas DataFrame, one row per cell × replication × estimator × effect.

        Columns: n, horizon, rep, estimator, effect, estimate, se, ci_low, ci_high, status.
        Replications missing from the store (status -1) are left out.
        """
        import pandas as pd

        c, r, e, k = self.estimate.shape
        ci, ri, ei, ki = np.meshgrid(np.arange(c), np.arange(r), np.arange(e), np.arange(k),
                                     indexing="ij")
        grid = np.asarray(self.grid, dtype=np.int64).reshape(c, 2)
        frame = pd.DataFrame({
            "n": grid[ci.ravel(), 0],
            "horizon": grid[ci.ravel(), 1],
            "rep": ri.ravel(),
            "estimator": pd.Categorical(np.asarray(self.estimators, dtype=object)[ei.ravel()],
                                        categories=list(self.estimators)),
            "effect": pd.Categorical(np.asarray(self.effects, dtype=object)[ki.ravel()],
                                     categories=list(self.effects)),
            "estimate": self.estimate.ravel(),
            "se": self.se.ravel(),
            "ci_low": self.ci_low.ravel(),
            "ci_high": self.ci_high.ravel(),
            "status": np.broadcast_to(self.status[:, :, None, None], (c, r, e, k)).ravel(),
        })
        return frame[frame["status"] >= 0].reset_index(drop=True)

    def summary(self, truth: dict[str, float] | None = None):
        """Per cell × estimator × effect summary (see ``jaxmed.study.summarize``)."""
        from jaxmed._src.study.summaries import summarize

        return summarize(self, self.truth if truth is None else truth)

    def metadata(self) -> dict[str, Any]:
        """The run's metadata as JSON-able values (used in ``summary.json``)."""
        return dict(design=self.design, estimator=self.estimator, reps=self.reps, seed=self.seed,
                    key_data=list(self.key_data), grid=[list(g) for g in self.grid],
                    n=sorted({int(g[0]) for g in self.grid}),
                    horizon=sorted({int(g[1]) for g in self.grid}), device=self.device,
                    devices=self.devices, dtype=self.dtype, jax_version=self.jax_version,
                    wall_s=self.wall_s, compile_s=self.compile_s, n_computed=self.n_computed,
                    batch_size=self.batch_size, chunk_size=self.chunk_size)
