"""N buckets: one compiled estimation program for several N of a study grid.

The bucket rule
---------------
Every N falls in one bucket of the sequence of half-octaves (…, 64, 96, 128, 192, 256, 384,
512, 768, 1024, 1536, 2048, …): the bucket of N is the smallest value ``2^k`` or ``3·2^(k−1)``
that is ≥ N. With ``n_buckets="auto"`` (the default of ``jaxmed.study.run``) the cells of a
grid with the same horizon whose N share a bucket are padded to the **largest N among them**
(not to the bucket's bound), so

* the estimator compiles once per (bucket, horizon) instead of once per (N, horizon);
* a grid with one N per bucket (e.g. a single cell) is not padded at all, and the padded
  size is always an N of the grid, so the per-replication memory bound does not grow;
* the paper's N-grid (N = 100, 200, …, 1500) compiles 7 estimation programs instead of 15
  (groups {100}, {200}, {300}, {400, 500}, {600, 700}, {800, 900, 1000}, {1100, …, 1500}),
  for 12.5% more trajectories in total.

Small cells join the next bucket up. A compiled program costs seconds (about 5 s to compile
the mediation estimator on 2 cores; even when it is cached, about 0.45 s to read its lowered
form, ``program_cache``, and load it, 0.9 s while it was traced first, before
``replication_identity``, 1.2 s before ``program_cache``), while padding costs
per replication. So with the number of replications
known (``jaxmed.study.run`` passes it), the groups of each horizon are merged from the
smallest up: a group is padded to the next group's size when that adds at most
``MERGE_STEPS`` (300,000) trajectory-steps over all its replications, reps × T × Σ (new
padded N − current padded N), about 0.9 s of work at the 3.1 µs per trajectory-step measured
at N = 1500, T = 25 (``benchmarks/README.md``). The paper's N-grid with 100 replications then
compiles 6 estimation programs instead of 7 for the semi-synthetic design (N = 200 joins
{300}; N = 100 has another knot count, ``EstimatorSpec.pad_group``, and keeps its own), and
3 with 8 replications. Without ``reps`` nothing is merged.

``n_buckets`` may instead be an increasing list of sizes (each N is padded to the smallest
size ≥ N: the same shapes, hence persistent-cache hits, across grids) or ``None`` (no
padding: one program per N).

Padding applies only to estimators that declare it safe (``EstimatorSpec.pad``, e.g. the
mediation estimators, whose statistics ignore trajectories without an observed step). The
data of each replication are simulated at the real N with the same keys as without padding
and padded afterwards (a separate, small simulation program per N), so padding changes no
random draw; the results differ from unpadded ones only by the rounding of longer sums.
"""

from __future__ import annotations

from typing import Sequence

__all__ = ["bucket_of", "padded_sizes", "estimator_pads", "MERGE_STEPS"]

# padding worth one compiled program less, in trajectory-steps (reps × T × added trajectories):
# about 0.9 s at 3.1 µs per trajectory-step (N = 1500, T = 25, 2 cores): between what a
# cached mediation estimator costs to build (0.45 s: the lowered program read back and the
# persistent-cache hit; 0.9 s with the trace before ``replication_identity``) and about 5 s to
# compile it
MERGE_STEPS = 300_000


def estimator_pads(estimator) -> bool:
    """Whether the study runner may pad this ``EstimatorSpec``'s data (it has a ``pad``)."""
    return callable(getattr(estimator, "pad", None))


def bucket_of(n: int) -> int:
    """The smallest half-octave value ``2^k`` or ``3·2^(k−1)`` that is ≥ ``n``.

    >>> [bucket_of(n) for n in (1, 2, 3, 5, 100, 500, 1000, 1100, 1500)]
    [1, 2, 3, 6, 128, 512, 1024, 1536, 1536]
    """
    if int(n) != n or n < 1:
        raise ValueError(f"n: expected a positive integer, got {n!r}")
    n = int(n)
    p = 1
    while p < n:
        if p >= 2 and p + p // 2 >= n:
            return p + p // 2
        p *= 2
    return p


def padded_sizes(grid: Sequence[tuple[int, int]], n_buckets="auto", group=None,
                 reps: int | None = None) -> list[int]:
    """The number of trajectories each grid cell is estimated at (≥ its N); see the module doc.

    >>> padded_sizes([(n, 25) for n in range(100, 1501, 100)])
    [100, 200, 300, 500, 500, 700, 700, 1000, 1000, 1000, 1500, 1500, 1500, 1500, 1500]
    >>> padded_sizes([(n, 25) for n in range(100, 1501, 100)], reps=100)[:4]
    [200, 200, 300, 500]
    >>> padded_sizes([(100, 25), (200, 25)], reps=8), padded_sizes([(100, 25), (200, 25)])
    ([200, 200], [100, 200])
    >>> padded_sizes([(100, 25), (120, 25), (120, 50)], [128, 256])
    [128, 128, 128]

    ``group(n, horizon)`` (``EstimatorSpec.pad_group``): cells share a padded size only within
    a group, and a listed size is used only when it is in the cell's group (else no padding).

    >>> padded_sizes([(100, 25), (125, 25)], group=lambda n, h: n * h >= 3125)
    [100, 125]
    """
    group = (lambda n, h: None) if group is None else group
    ns = [int(n) for n, _ in grid]
    if n_buckets is None or n_buckets is False:
        return ns
    if isinstance(n_buckets, str):
        if n_buckets != "auto":
            raise ValueError(f"n_buckets: expected 'auto', None or a list of sizes, got "
                             f"{n_buckets!r}")
        largest: dict[tuple[int, int], int] = {}
        for n, h in grid:
            k = (bucket_of(n), int(h), group(int(n), int(h)))
            largest[k] = max(largest.get(k, 0), int(n))
        sizes = [largest[(bucket_of(n), int(h), group(int(n), int(h)))] for n, h in grid]
        return sizes if reps is None else _merge_small(grid, sizes, int(reps), group)
    sizes = sorted(int(s) for s in n_buckets)
    if not sizes or any(s < 1 for s in sizes):
        raise ValueError(f"n_buckets: expected positive sizes, got {list(n_buckets)!r}")
    out = []
    for n, (_, h) in zip(ns, grid):
        fit = [s for s in sizes if s >= n]
        if not fit:
            raise ValueError(f"n_buckets: no size >= N = {n} in {sizes}")
        same = [s for s in fit if group(s, int(h)) == group(n, int(h))]
        out.append(same[0] if same else n)
    return out


def _merge_small(grid, sizes, reps: int, group) -> list[int]:
    """``sizes`` with each group (cells of one horizon and pad group sharing a padded size)
    padded to the next larger group's size while that adds at most ``MERGE_STEPS``
    trajectory-steps (module doc); from the smallest group up, a merged group merging on."""
    sizes = list(sizes)
    lanes: dict[tuple, list[int]] = {}  # (horizon, pad group) -> cell indices
    for i, (n, h) in enumerate(grid):
        lanes.setdefault((int(h), group(int(n), int(h))), []).append(i)
    for (h, _), cells in lanes.items():
        levels = sorted({sizes[i] for i in cells})
        for lo, hi in zip(levels, levels[1:]):
            members = [i for i in cells if sizes[i] == lo]
            if reps * h * len(members) * (hi - lo) <= MERGE_STEPS:
                for i in members:
                    sizes[i] = hi
    return sizes
