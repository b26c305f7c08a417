"""Shared test checks: finite-difference agreement over the defined estimator × effect cells,
and a plainly written numpy reference for the Toy I chain (spec mediation.md §7.4)."""

import numpy as np


def assert_fd_close(jac, fd, cells, rtol: float = 1e-5) -> float:
    """``jac`` and ``fd`` agree on the ``cells`` (rows of (estimator, effect) indices): relative
    error < ``rtol`` where |fd| exceeds 1e-3 of its maximum, absolute error < ``rtol`` · max|fd|
    elsewhere. Returns the largest relative error."""
    jac = np.asarray(jac)[cells[:, 0], cells[:, 1]]
    fd = np.asarray(fd)[cells[:, 0], cells[:, 1]]
    assert np.all(np.isfinite(jac)) and np.all(np.isfinite(fd))
    big = np.abs(fd) > 1e-3 * np.max(np.abs(fd))
    rel = np.abs(jac - fd)[big] / np.abs(fd)[big]
    assert rel.max() < rtol, rel.max()
    assert np.max(np.abs(jac - fd)[~big], initial=0.0) < rtol * np.max(np.abs(fd))
    return float(rel.max())


def toy1_eta1(pe) -> float:
    """η1 = E_stationary r of Toy I under the target policy π_e(1|s) = ``pe(s)``, by power
    iteration of the 2-state chain written out by hand (spec §7.4 models)."""
    def pm(s, a):
        return 1 / (1 + np.exp(-(1 - 1.5 * s + 2.5 * a)))

    def r(s, a, m):
        return 10 / (1 + np.exp(-(1 + 2 * s - a - 2.5 * m)))

    def ps(s, a, m):
        return 1 / (1 + np.exp(-(0.5 + 3 * s - 2.5 * a - 0.5 * m)))

    K = np.zeros((2, 2))
    f1 = np.zeros(2)
    for s in (0, 1):
        for a in (0, 1):
            pa = pe(s) if a else 1 - pe(s)
            for m in (0, 1):
                pmm = pm(s, a) if m else 1 - pm(s, a)
                K[s, 1] += pa * pmm * ps(s, a, m)
                f1[s] += pa * pmm * r(s, a, m)
    K[:, 0] = 1 - K[:, 1]
    d = np.array([0.5, 0.5])
    for _ in range(2000):
        d = d @ K
    return float(d @ f1)
