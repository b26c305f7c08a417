"""On-disk store of a Monte Carlo study: a manifest plus one ``.npz`` file per finished chunk.

Layout of a study directory ``out/``::

    out/manifest.json                      what is being computed (validated on resume)
    out/chunks/cell003_rep0000040_n8.npz   one file per finished chunk of one grid cell

A chunk file holds the replication indices it covers (``rep``, int64 ``(R,)``) and the
per-replication ``estimate``, ``se``, ``ci_low``, ``ci_high`` (``(R, E, K)``) and ``status``
(``(R,)``). Files are written atomically (a temporary file in the same directory, flushed,
then ``os.replace``), so a killed study leaves only complete chunks behind; they are read
with ``allow_pickle=False``.

The store does not care which process wrote a chunk: chunk files written by different
processes (multi-host studies) for the same manifest are merged by copying them into one
``chunks/`` directory. Overlapping replications are allowed only if their values agree.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from typing import Any, Mapping

import numpy as np

__all__ = ["ChunkStore", "MANIFEST_FORMAT", "STATUS_MISSING"]

MANIFEST_FORMAT = "jaxmed-study-v1"
STATUS_MISSING = -1  # status of a replication that is not (yet) in the store
_FIELDS = ("estimate", "se", "ci_low", "ci_high")
_NAME = re.compile(r"^cell(\d{3,})_rep(\d{7,})_n(\d+)\.npz$")
# Manifest keys that define the numbers; a resumed study must agree on all of them.
_IDENTITY_KEYS = ("format", "design", "estimator", "estimators", "effects", "grid", "reps", "seed",
                  "key_data", "batch_size", "dtype")


def _atomic_write_bytes(path: str, write) -> None:
    directory = os.path.dirname(path) or "."
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


class ChunkStore:
    """A study directory: manifest and chunk files.

    Args:
      path: the study directory (created if missing).
    """

    def __init__(self, path: str | os.PathLike):
        self.path = os.fspath(path)
        self.chunk_dir = os.path.join(self.path, "chunks")
        self.manifest_path = os.path.join(self.path, "manifest.json")

    # -- manifest -------------------------------------------------------------------------
    def read_manifest(self) -> dict | None:
        """The stored manifest, or ``None`` if the directory holds no study."""
        if not os.path.exists(self.manifest_path):
            return None
        with open(self.manifest_path, encoding="utf-8") as f:
            return json.load(f)

    def open(self, manifest: Mapping[str, Any]) -> None:
        """Creates the store with ``manifest``, or checks that an existing one agrees.

        Raises:
          ValueError: ``out`` already holds a study whose manifest differs in a key that
            determines the numbers (design, estimator, grid, reps, seed, batch size, dtype).
        """
        os.makedirs(self.chunk_dir, exist_ok=True)
        old = self.read_manifest()
        if old is None:
            data = json.dumps(dict(manifest), indent=2, sort_keys=True).encode()
            _atomic_write_bytes(self.manifest_path, lambda f: f.write(data))
            return
        diffs = [k for k in _IDENTITY_KEYS if _jsonable(old.get(k)) != _jsonable(manifest.get(k))]
        if diffs:
            detail = "; ".join(f"{k}: stored {old.get(k)!r}, requested {manifest.get(k)!r}"
                               for k in diffs)
            raise ValueError(f"out: {self.path} holds a different study ({detail}); use a new "
                             f"directory or the same arguments to resume")

    # -- chunks ---------------------------------------------------------------------------
    def chunk_path(self, cell: int, reps: np.ndarray) -> str:
        return os.path.join(self.chunk_dir, f"cell{cell:03d}_rep{int(reps[0]):07d}_n{len(reps)}.npz")

    def write_chunk(self, cell: int, reps: np.ndarray, table: Mapping[str, np.ndarray]) -> str:
        """Atomically writes the results of replications ``reps`` of grid cell ``cell``."""
        reps = np.asarray(reps, dtype=np.int64)
        arrays = {k: np.asarray(table[k]) for k in _FIELDS}
        arrays["status"] = np.asarray(table["status"], dtype=np.int32)
        arrays["rep"] = reps
        path = self.chunk_path(cell, reps)
        _atomic_write_bytes(path, lambda f: np.savez(f, **arrays))
        return path

    def chunk_files(self) -> list[tuple[int, str]]:
        """(cell, path) of every complete chunk file, sorted by name."""
        if not os.path.isdir(self.chunk_dir):
            return []
        out = []
        for name in sorted(os.listdir(self.chunk_dir)):
            m = _NAME.match(name)
            if m:
                out.append((int(m.group(1)), os.path.join(self.chunk_dir, name)))
        return out

    def load(self, n_cells: int, reps: int, n_estimators: int, n_effects: int) -> dict:
        """Reads every chunk into dense arrays.

        Returns:
          A dict with ``estimate``, ``se``, ``ci_low``, ``ci_high`` ``(C, reps, E, K)`` (NaN
          where missing), ``status`` ``(C, reps)`` (``STATUS_MISSING`` where missing) and
          ``done`` ``(C, reps)`` bool.
        """
        shape = (n_cells, reps, n_estimators, n_effects)
        out = {k: np.full(shape, np.nan) for k in _FIELDS}
        out["status"] = np.full((n_cells, reps), STATUS_MISSING, dtype=np.int32)
        done = np.zeros((n_cells, reps), dtype=bool)
        for cell, path in self.chunk_files():
            if cell >= n_cells:
                raise ValueError(f"out: chunk file {path} names cell {cell}, but the grid has "
                                 f"{n_cells} cells")
            with np.load(path, allow_pickle=False) as z:
                rep = z["rep"]
                if rep.ndim != 1 or (rep.size and (rep.min() < 0 or rep.max() >= reps)):
                    raise ValueError(f"out: chunk file {path} holds replications outside [0, {reps})")
                arrays = {k: z[k] for k in (*_FIELDS, "status")}
            for k in _FIELDS:
                if arrays[k].shape != (len(rep), n_estimators, n_effects):
                    raise ValueError(f"out: chunk file {path}: {k} has shape {arrays[k].shape}, "
                                     f"expected {(len(rep), n_estimators, n_effects)}")
            seen = done[cell, rep]
            if seen.any():  # overlapping chunks (e.g. merged from several hosts) must agree
                for k in (*_FIELDS, "status"):
                    if not np.array_equal(out[k][cell, rep[seen]], arrays[k][seen], equal_nan=True):
                        raise ValueError(f"out: chunk file {path} disagrees with another chunk on "
                                         f"replications {rep[seen][:5].tolist()} of cell {cell}")
            for k in (*_FIELDS, "status"):
                out[k][cell, rep] = arrays[k]
            done[cell, rep] = True
        out["done"] = done
        return out


def _jsonable(x):
    """Normalises a value as it would round-trip through JSON (tuples become lists)."""
    return json.loads(json.dumps(x))
