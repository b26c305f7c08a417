"""On-disk store of a Monte Carlo study: a manifest plus one ``.npz`` file per finished chunk.

Layout of a study directory ``out/``::

    out/manifest.json                      what is being computed (validated on resume)
    out/chunks/cell003_rep0000040_n8.npz   one file per finished chunk of one grid cell
    out/chunks/corrupt/                    unreadable chunk files, moved aside on resume
    out/lock-1of1                          held (flock) while a run computes share 1 of 1

A chunk file holds the replication indices it covers (``rep``, int64 ``(R,)``), the
per-replication ``estimate``, ``se``, ``ci_low``, ``ci_high`` (``(R, E, K)``) and ``status``
(``(R,)``), and the study's ``fingerprint`` (a SHA-256 of the manifest keys that determine
the numbers: design, estimator, estimators, effects, grid, reps, seed, key data, batch size,
dtype). A chunk whose fingerprint differs from the manifest's (copied from another study) is
refused with the file's name. Files are written atomically (a temporary ``.part`` file in the
same directory, flushed, then ``os.replace``) with the permissions the umask allows, so a
killed study leaves only complete chunks behind (and ``.part`` temporaries, removed by the
next run of the same share); they are read with ``allow_pickle=False``. A chunk that cannot
be read (truncated, corrupt) is named in a ``ValueError`` by ``load``; a resuming ``run``
moves it to ``chunks/corrupt/`` with a warning and recomputes its replications.

Concurrency: a run holds an exclusive ``flock`` on ``out/lock-{i+1}of{k}`` for its share
``process=(i, k)``; a second run of the same share into the same directory fails at once
with a ``RuntimeError`` naming the lock and the holder's pid (the lock dies with its
process, so a killed run never leaves a stale lock). Runs of different shares may write
into one directory at the same time (job arrays on a shared filesystem).

The store does not care which process wrote a chunk: chunk files written by different
processes (multi-host studies, job arrays) for the same study are merged by copying them
into one ``chunks/`` directory (``merge_stores``, ``jaxmed merge``). Overlapping
replications are allowed only if their values agree.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import tempfile
import warnings
import zipfile
import zlib
from typing import Any, Mapping

import numpy as np

__all__ = ["ChunkStore", "MANIFEST_FORMAT", "STATUS_MISSING", "study_fingerprint", "merge_stores",
           "StoreLockedError"]

MANIFEST_FORMAT = "jaxmed-study-v2"
STATUS_MISSING = -1  # status of a replication that is not (yet) in the store
_FIELDS = ("estimate", "se", "ci_low", "ci_high")
_NAME = re.compile(r"^cell(\d{3,})_rep(\d{7,})_n(\d+)\.npz$")
# Manifest keys that define the numbers; a resumed study must agree on all of them.
_IDENTITY_KEYS = ("format", "design", "estimator", "estimators", "effects", "grid", "reps", "seed",
                  "key_data", "batch_size", "dtype")
# identity keys a manifest holds only when they apply (so studies without them keep their
# fingerprints): ``padded_n``, the N each cell is estimated at (``n_buckets``), and
# ``settings``, the estimator's settings that its name does not say (``EstimatorSpec.settings``),
# and ``xla_opt_level``, XLA's backend optimisation level when it is not the default
_OPTIONAL_IDENTITY_KEYS = ("padded_n", "settings", "xla_opt_level")
_PART_PREFIX = ".tmp-"
# what a truncated or damaged .npz raises when opened or read
_UNREADABLE = (zipfile.BadZipFile, EOFError, OSError, KeyError, ValueError, zlib.error)


class StoreLockedError(RuntimeError):
    """Another process is running the same share of the study into the same directory."""


def study_fingerprint(manifest: Mapping[str, Any]) -> str:
    """SHA-256 (hex) of the manifest keys that determine the numbers (``_IDENTITY_KEYS``).

    >>> len(study_fingerprint({"design": "toy1", "seed": 0}))
    64
    """
    ident = {k: _jsonable(manifest.get(k)) for k in _IDENTITY_KEYS}
    ident.update({k: _jsonable(manifest[k]) for k in _OPTIONAL_IDENTITY_KEYS
                  if manifest.get(k) is not None})
    return hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _atomic_write_bytes(path: str, write, tag: str = "") -> None:
    directory = os.path.dirname(path) or "."
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f"{_PART_PREFIX}{tag}", suffix=".part")
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp creates 0600; honour the umask instead
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
        self.corrupt_dir = os.path.join(self.chunk_dir, "corrupt")
        self.manifest_path = os.path.join(self.path, "manifest.json")
        self.fingerprint: str | None = None

    # -- manifest -------------------------------------------------------------------------
    def read_manifest(self) -> dict | None:
        """The stored manifest, or ``None`` if the directory holds no study."""
        if not os.path.exists(self.manifest_path):
            return None
        try:
            with open(self.manifest_path, encoding="utf-8") as f:
                return json.load(f)
        except (OSError, ValueError) as e:
            raise ValueError(f"out: cannot read {self.manifest_path} ({e})") from None

    def open(self, manifest: Mapping[str, Any]) -> None:
        """Creates the store with ``manifest``, or checks that an existing one agrees.

        Raises:
          ValueError: ``out`` already holds a study whose manifest differs in a key that
            determines the numbers (design, estimator, grid, reps, seed, batch size, dtype).
        """
        os.makedirs(self.chunk_dir, exist_ok=True)
        manifest = dict(manifest)
        manifest["fingerprint"] = study_fingerprint(manifest)
        old = self.read_manifest()
        if old is None:
            data = json.dumps(manifest, indent=2, sort_keys=True).encode()
            _atomic_write_bytes(self.manifest_path, lambda f: f.write(data))
            self.fingerprint = manifest["fingerprint"]
            return
        diffs = [k for k in _IDENTITY_KEYS + _OPTIONAL_IDENTITY_KEYS
                 if _jsonable(old.get(k)) != _jsonable(manifest.get(k))]
        if diffs:
            detail = "; ".join(f"{k}: stored {old.get(k)!r}, requested {manifest.get(k)!r}"
                               for k in diffs)
            raise ValueError(f"out: {self.path} holds a different study ({detail}); use a new "
                             f"directory or the same arguments to resume")
        self.fingerprint = manifest["fingerprint"]

    def expected_fingerprint(self) -> str:
        """The fingerprint every chunk must carry (from the manifest)."""
        if self.fingerprint is None:
            m = self.read_manifest()
            if m is None:
                raise ValueError(f"out: no manifest.json in {self.path}")
            self.fingerprint = study_fingerprint(m)
        return self.fingerprint

    # -- concurrency ----------------------------------------------------------------------
    @contextlib.contextmanager
    def lock(self, share: tuple[int, int] = (0, 1)):
        """Holds an exclusive lock on ``lock-{i+1}of{k}`` for share ``(i, k)``, or fails.

        Raises:
          StoreLockedError: another live process holds the lock of this share.
        """
        import fcntl

        os.makedirs(self.path, exist_ok=True)
        path = os.path.join(self.path, f"lock-{share[0] + 1}of{share[1]}")
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "unknown"
                raise StoreLockedError(
                    f"out: {self.path} is in use: another run of share {share[0] + 1}/{share[1]} "
                    f"of this study holds {path} (pid {holder}); wait for it to finish or use "
                    f"another directory") from None
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
            yield path
        finally:
            os.close(fd)  # releases the flock

    def clean_temporaries(self, share: tuple[int, int] = (0, 1)) -> list[str]:
        """Removes the ``.part`` temporaries a killed run of ``share`` left (call under its lock)."""
        tag = _share_tag(share)
        removed = []
        for d in (self.path, self.chunk_dir):
            if not os.path.isdir(d):
                continue
            for name in os.listdir(d):
                if name.startswith(_PART_PREFIX + tag) and name.endswith(".part"):
                    os.unlink(os.path.join(d, name))
                    removed.append(name)
        return removed

    # -- chunks ---------------------------------------------------------------------------
    def chunk_path(self, cell: int, reps: np.ndarray) -> str:
        return os.path.join(self.chunk_dir, f"cell{cell:03d}_rep{int(reps[0]):07d}_n{len(reps)}.npz")

    def write_chunk(self, cell: int, reps: np.ndarray, table: Mapping[str, np.ndarray],
                    share: tuple[int, int] = (0, 1)) -> str:
        """Atomically writes the results of replications ``reps`` of grid cell ``cell``."""
        reps = np.asarray(reps, dtype=np.int64)
        arrays = {k: np.asarray(table[k]) for k in _FIELDS}
        arrays["status"] = np.asarray(table["status"], dtype=np.int32)
        arrays["rep"] = reps
        arrays["fingerprint"] = np.asarray(self.expected_fingerprint())
        path = self.chunk_path(cell, reps)
        _atomic_write_bytes(path, lambda f: np.savez(f, **arrays), tag=_share_tag(share))
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

    def read_chunk(self, path: str) -> dict:
        """The arrays of one chunk file, after checking its fingerprint.

        Raises:
          ValueError: the file cannot be read (message starts ``out: chunk file PATH is
            unreadable``) or belongs to another study.
        """
        try:
            with np.load(path, allow_pickle=False) as z:
                arrays = {k: z[k] for k in (*_FIELDS, "status", "rep")}
                stamp = str(z["fingerprint"]) if "fingerprint" in z.files else None
        except _UNREADABLE as e:
            raise _CorruptChunk(f"out: chunk file {path} is unreadable ({type(e).__name__}: {e}); "
                                f"run the study again to move it to {self.corrupt_dir} and "
                                f"recompute it") from None
        if stamp != self.expected_fingerprint():
            what = "has no study fingerprint" if stamp is None else f"has fingerprint {stamp[:12]}…"
            raise ValueError(f"out: chunk file {path} belongs to another study: it {what}, the "
                             f"manifest's is {self.expected_fingerprint()[:12]}… (a different design, "
                             f"estimator, grid, reps, seed, batch size or dtype); remove it")
        return arrays

    def quarantine(self, path: str) -> str:
        """Moves an unreadable chunk file to ``chunks/corrupt/``; returns its new path."""
        os.makedirs(self.corrupt_dir, exist_ok=True)
        dest = os.path.join(self.corrupt_dir, os.path.basename(path))
        k = 1
        while os.path.exists(dest):
            dest = os.path.join(self.corrupt_dir, f"{os.path.basename(path)}.{k}")
            k += 1
        os.replace(path, dest)
        return dest

    def load(self, n_cells: int, reps: int, n_estimators: int, n_effects: int, *,
             corrupt: str = "raise") -> dict:
        """Reads every chunk into dense arrays.

        Args:
          corrupt: what to do with an unreadable chunk file: ``"raise"`` a ``ValueError``
            naming it, or ``"quarantine"``: move it to ``chunks/corrupt/`` with a warning
            (its replications count as missing and are recomputed by ``run``).

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
            try:
                arrays = self.read_chunk(path)
            except _CorruptChunk as e:
                if corrupt != "quarantine":
                    raise ValueError(str(e)) from None
                dest = self.quarantine(path)
                warnings.warn(f"out: chunk file {path} is unreadable; moved to {dest}, its "
                              f"replications will be recomputed", RuntimeWarning, stacklevel=3)
                continue
            rep = arrays["rep"]
            if rep.ndim != 1 or (rep.size and (rep.min() < 0 or rep.max() >= reps)):
                raise ValueError(f"out: chunk file {path} holds replications outside [0, {reps})")
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


def _copy_into(path: str, f) -> None:
    with open(path, "rb") as src:
        shutil.copyfileobj(src, f)


class _CorruptChunk(ValueError):
    pass


def _share_tag(share: tuple[int, int]) -> str:
    return f"{share[0] + 1}of{share[1]}-"


def merge_stores(out, sources) -> dict:
    """Combines the chunk files of several study directories (shares of one study) into ``out``.

    Every source must hold the same study (same fingerprint; ``out`` too if it exists).
    Chunk files are copied (a file already in ``out`` with the same name must be identical
    in content), then the merged store is read once to check that overlapping replications
    agree.

    Args:
      out: the merged study directory (created if missing).
      sources: study directories (e.g. the ``--out`` of each job of a job array).

    Returns:
      ``{"copied": n files, "skipped": n identical files already there, "done": replications
      present, "total": replications of the study}``.

    Raises:
      ValueError: a source has no manifest, holds another study, or a chunk conflicts.
    """
    sources = [os.fspath(s) for s in sources]
    if not sources:
        raise ValueError("sources: expected at least one study directory")
    dest = ChunkStore(out)
    manifest = None
    for src in sources:
        m = ChunkStore(src).read_manifest()
        if m is None:
            raise ValueError(f"sources: {src} holds no study (no manifest.json)")
        if manifest is None:
            manifest = m
        elif study_fingerprint(m) != study_fingerprint(manifest):
            diffs = [k for k in _IDENTITY_KEYS if _jsonable(m.get(k)) != _jsonable(manifest.get(k))]
            raise ValueError(f"sources: {src} holds a different study than {sources[0]} "
                             f"(differs in {', '.join(diffs)})")
    manifest = {k: v for k, v in manifest.items() if k != "fingerprint"}
    dest.open(manifest)  # refuses an existing different study in ``out``
    copied = skipped = 0
    for src in sources:
        store = ChunkStore(src)
        store.fingerprint = dest.fingerprint
        for _, path in store.chunk_files():
            arrays = store.read_chunk(path)  # named error if unreadable or from another study
            target = os.path.join(dest.chunk_dir, os.path.basename(path))
            if os.path.abspath(target) == os.path.abspath(path):
                continue
            if os.path.exists(target):
                there = dest.read_chunk(target)
                if not all(np.array_equal(arrays[k], there[k], equal_nan=True) for k in arrays):
                    raise ValueError(f"sources: chunk file {path} differs from {target}")
                skipped += 1
                continue
            _atomic_write_bytes(target, lambda f, p=path: _copy_into(p, f))
            copied += 1
    grid, reps = manifest["grid"], int(manifest["reps"])
    arrays = dest.load(len(grid), reps, len(manifest["estimators"]), len(manifest["effects"]))
    return dict(copied=copied, skipped=skipped, done=int(arrays["done"].sum()),
                total=len(grid) * reps)


def _jsonable(x):
    """Normalises a value as it would round-trip through JSON (tuples become lists)."""
    return json.loads(json.dumps(x))
