"""Prints jaxmed's cached truths next to the original repository's (spec mediation.md §8.2).

Usage:  PYTHONPATH=. python3 experiments/compare_truths.py   (markdown table to stdout)
"""

from __future__ import annotations

from jaxmed._src.sim.designs import load_cached_truths

# Spec mediation.md §8.2: repository truths (T = 6400 rows; IDE, IME, DDE, DME).
REPO = {
    "semi-synthetic": ([9.848026, 7.168185, 3.514651, 2.270868, 1.581837],
                       [2.679841, 3.653535, 1.243782, 0.689031]),
    "variance-1": ([10.661257, 7.786984, 3.835070, 2.156754, 0.811966],
                   [2.874272, 3.951914, 1.678317, 1.344787]),
    "variance-3": ([9.431943, 6.864936, 3.449633, 2.629262, 2.166104],
                   [2.567007, 3.415303, 0.820371, 0.463159]),
    "multidim": ([10.668444, 7.787885, 3.831956, 2.229468, 0.900047],
                 [2.880559, 3.955929, 1.602488, 1.329421]),
}
SEMI_BASELINES_T1600 = [2.677701, 3.650198]
EFFECTS = ["IDE", "IME", "DDE", "DME"]


def main():
    cached = load_cached_truths()
    print("| design | quantity | jaxmed (± SE) | repository | difference | difference / SE |")
    print("|---|---|---|---|---|---|")
    for name, (eta_r, eff_r) in REPO.items():
        for jname in ([name, "multidim-b6"] if name == "multidim" else [name]):
            e = cached[jname]
            for i in range(5):
                d = e["eta"][i] - eta_r[i]
                print(f"| {jname} | η{i + 1} | {e['eta'][i]:.6f} ± {e['eta_se'][i]:.6f} | "
                      f"{eta_r[i]:.6f} | {d:+.6f} | {d / e['eta_se'][i]:+.1f} |")
            for k, r in zip(EFFECTS, eff_r):
                d = e["effects"][k] - r
                print(f"| {jname} | {k} | {e['effects'][k]:.6f} ± {e['se'][k]:.6f} | {r:.6f} | "
                      f"{d:+.6f} | {d / e['se'][k]:+.1f} |")
    e = cached["semi-synthetic"]
    for k, r in zip(EFFECTS[:2], SEMI_BASELINES_T1600):
        d = e["effects"][k] - r
        print(f"| semi-synthetic (baselines, T=1600 truth) | {k} | {e['effects'][k]:.6f} ± "
              f"{e['se'][k]:.6f} | {r:.6f} | {d:+.6f} | {d / e['se'][k]:+.1f} |")


if __name__ == "__main__":
    main()
