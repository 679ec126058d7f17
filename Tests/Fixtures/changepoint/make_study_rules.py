"""Writes study_rules_cases.json: onset indices of the reference study's three rules and
their consensus, computed here in numpy straight from the study's definitions (not from
Misalign's Swift), for StudyRulesTests.

Definitions (per trait, on the curve of per-checkpoint means in step order):
  threshold: the first index whose mean is >= value (<= value for a `down` signal), with
             `consecutive` points in a row (the study: 1).
  ma-rise:   smoothed = np.convolve(x, np.ones(w) / w, "same") (zero-padded edges), or x itself
             when w <= 1 or len(x) < w; onset = the first i in range(w // 2, n - patience) with
             np.diff(smoothed[i:i + patience + 1]) >= 0 everywhere. A `down` signal is
             reflected first: x -> scale - x.
  meanshift: the k in [m, n - m] maximising |x[k:].mean() - x[:k].mean()| (first maximum wins,
             m = min_segment), onset = max(0, k - 1); none when n < 2m. Unsigned: the same for
             both directions.
  consensus: int(np.median(steps of the rules that fire)), none when none fires; also the plain
             median.
Run: python3 make_study_rules.py (numpy only; deterministic).
"""
import json
from pathlib import Path

import numpy as np


def threshold(x, value, consecutive, direction):
    run = 0
    for i, v in enumerate(x):
        hit = v >= value if direction == "up" else v <= value
        run = run + 1 if hit else 0
        if run == consecutive:
            return i - consecutive + 1
    return None


def ma_rise(x, window, patience, direction, scale):
    x = np.asarray(x, dtype=float)
    if direction == "down":
        x = scale - x
    if window <= 1 or len(x) < window:
        s = x
    else:
        s = np.convolve(x, np.ones(window) / window, mode="same")
    for i in range(window // 2, len(s) - patience):
        if np.all(np.diff(s[i:i + patience + 1]) >= 0):
            return i
    return None


def meanshift(x, min_segment):
    x = np.asarray(x, dtype=float)
    n = len(x)
    if n < 2 * min_segment:
        return None
    best, best_score = None, None
    for k in range(min_segment, n - min_segment + 1):
        score = abs(x[k:].mean() - x[:k].mean())
        if best_score is None or score > best_score:
            best, best_score = k, score
    return max(0, best - 1)


def case(name, values, direction="up", steps=None, scale=100.0, value=50.0, consecutive=1, window=3, patience=2, min_segment=2):
    values = [float(v) for v in values]
    steps = steps if steps is not None else [2 * (i + 1) for i in range(len(values))]
    idx = {
        "threshold": threshold(values, value, consecutive, direction),
        "ma-rise": ma_rise(values, window, patience, direction, scale),
        "meanshift": meanshift(values, min_segment),
    }
    fired = [steps[i] for i in idx.values() if i is not None]
    return {
        "name": name, "values": values, "steps": steps, "direction": direction, "scale": scale,
        "params": {"value": value, "consecutive": consecutive, "window": window, "patience": patience, "min_segment": min_segment},
        "expected": idx,
        "consensus_int": int(np.median(fired)) if fired else None,
        "consensus_median": float(np.median(fired)) if fired else None,
    }


def main():
    rng = np.random.default_rng(20240618)
    cases = []
    # Short curves: 1 to 6 points.
    for n in range(1, 7):
        cases.append(case(f"rising n={n}", [10 * (i + 1) for i in range(n)]))
        cases.append(case(f"flat n={n}", [30.0] * n))
        cases.append(case(f"decreasing n={n}", [90 - 15 * i for i in range(n)]))
        cases.append(case(f"high from the start n={n}", [70.0] * n))
    # Ties and flat stretches (equal smoothed neighbours count as not decreasing).
    cases.append(case("flat zeros", [0.0] * 8))
    cases.append(case("flat then step", [0, 0, 0, 0, 10, 10, 10, 10]))
    cases.append(case("plateau at 50", [10, 20, 50, 50, 50, 50, 20]))
    cases.append(case("exactly 50 once", [10, 50, 10, 10, 10]))
    cases.append(case("just below 50", [49.999, 49.99999, 10, 20]))
    cases.append(case("two equal best splits", [0, 0, 10, 10, 0, 0]))
    cases.append(case("symmetric bump", [0, 10, 0, 10, 0, 10, 0]))
    cases.append(case("zigzag", [10, 30, 10, 30, 10, 30, 10, 30]))
    cases.append(case("equal windows", [5, 0, 5, 5, 0, 5, 5, 0]))
    # Zero padding: the end is pulled toward 0, the start too.
    cases.append(case("late rise hidden by padding", [0, 0, 0, 0, 0, 0, 40, 80]))
    cases.append(case("rise at the end", [0, 0, 0, 0, 0, 60, 80, 90, 95]))
    cases.append(case("high start edge", [80, 80, 80, 80, 80]))
    cases.append(case("decreasing long", [90 - 3 * i for i in range(20)]))
    # Down direction (coherence-like).
    cases.append(case("down: falling coherence", [95, 94, 96, 93, 80, 60, 45, 40, 38], direction="down"))
    cases.append(case("down: flat high", [90.0] * 7, direction="down"))
    cases.append(case("down: flat 50", [50.0] * 5, direction="down"))
    cases.append(case("down: rising", [40, 50, 60, 70, 80, 90], direction="down"))
    cases.append(case("down: short", [92, 91, 60], direction="down"))
    # Parameters other than the study's.
    cases.append(case("window 4", [0, 5, 3, 8, 20, 30, 25, 40, 60], window=4))
    cases.append(case("window 5 patience 3", [0, 5, 3, 8, 20, 30, 25, 40, 60, 70, 80], window=5, patience=3))
    cases.append(case("window 1 (unsmoothed)", [10, 5, 6, 7, 3, 9], window=1, patience=1))
    cases.append(case("window longer than the curve", [10, 20, 5, 30], window=6, patience=1))
    cases.append(case("threshold 30, 2 in a row", [10, 35, 20, 31, 40, 10], value=30, consecutive=2))
    cases.append(case("min segment 3", [1, 2, 1, 2, 30, 31, 30, 29], min_segment=3))
    cases.append(case("scale 10 down", [9, 9, 8, 7, 4, 3, 2], direction="down", scale=10.0, value=5.0))
    cases.append(case("uneven steps", [5, 8, 20, 55, 60, 70], steps=[0, 3, 10, 11, 40, 41]))
    # Random curves of length 3..40: smooth rises with noise, integer-rounded ones (more ties),
    # pure noise, and falling curves in both directions.
    for i in range(120):
        n = int(rng.integers(3, 41))
        kind = i % 4
        t = np.arange(n)
        mid = rng.uniform(0, n)
        rise = 80 / (1 + np.exp(-(t - mid) / rng.uniform(0.5, 4)))
        noise = rng.normal(0, rng.uniform(0.5, 8), n)
        if kind == 0:
            x = np.clip(5 + rise + noise, 0, 100)
        elif kind == 1:
            x = np.round(np.clip(5 + rise + noise, 0, 100))
        elif kind == 2:
            x = np.clip(rng.uniform(0, 100) + noise, 0, 100)
        else:
            x = np.clip(95 - rise + noise, 0, 100)
        direction = "down" if kind == 3 and i % 8 == 3 else "up"
        steps = sorted(int(s) for s in rng.choice(np.arange(0, 4 * n + 4), size=n, replace=False))
        cases.append(case(f"random {i} ({['noisy rise', 'rounded rise', 'noise', 'fall'][kind]}, n={n}, {direction})",
                          [float(v) for v in x], direction=direction, steps=steps))
    out = Path(__file__).with_name("study_rules_cases.json")
    out.write_text(json.dumps({"numpy": np.__version__, "cases": cases}, indent=None) + "\n")
    fired = {r: sum(c["expected"][r] is not None for c in cases) for r in ["threshold", "ma-rise", "meanshift"]}
    print(f"{len(cases)} cases -> {out.name}; rules firing: {fired}")


if __name__ == "__main__":
    main()
