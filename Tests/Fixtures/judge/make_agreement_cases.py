"""Reference values for the judge tests.

agreement_cases.json: Pearson and Spearman (scipy.stats), Krippendorff's alpha, interval
metric (the `krippendorff` package), Cohen's kappa after thresholding at 50 (score >= 50 is
positive), mean absolute difference and the share of pairs differing by >= 20 points, for
pairs of judges' scores with missing values (null). Pairwise statistics use the answers both
judges scored; alpha uses every answer with at least two scores.

sha256_cases.json: hashlib digests of assorted byte strings (empty, padding boundaries,
multi-block, non-ASCII).

Run: python3 make_agreement_cases.py  (pip install scipy numpy krippendorff)
"""
import base64, hashlib, json, math, os
import numpy as np
import krippendorff
from scipy import stats

here = os.path.dirname(os.path.abspath(__file__))
rng = np.random.default_rng(6)


def kappa(a, b):
    a = np.asarray(a) >= 50
    b = np.asarray(b) >= 50
    po = np.mean(a == b)
    pe = np.mean(a) * np.mean(b) + np.mean(~a) * np.mean(~b)
    return None if pe == 1 else float((po - pe) / (1 - pe))


def case(name, a, b):
    both = [(x, y) for x, y in zip(a, b) if x is not None and y is not None]
    x = np.array([p[0] for p in both], dtype=float)
    y = np.array([p[1] for p in both], dtype=float)
    data = np.array([[np.nan if v is None else v for v in a], [np.nan if v is None else v for v in b]], dtype=float)
    def finite(v):
        return None if v is None or not math.isfinite(v) else float(v)
    return {
        "name": name, "a": a, "b": b, "n": len(both),
        "pearson": finite(stats.pearsonr(x, y)[0]) if np.std(x) > 0 and np.std(y) > 0 else None,
        "spearman": finite(stats.spearmanr(x, y)[0]) if np.std(x) > 0 and np.std(y) > 0 else None,
        "mean_abs_diff": float(np.mean(np.abs(x - y))),
        "share_diff_20": float(np.mean(np.abs(x - y) >= 20)),
        "alpha_interval": finite(krippendorff.alpha(reliability_data=data, level_of_measurement="interval")),
        "cohen_kappa_50": kappa(x, y),
    }


cases = []
for i, n in enumerate([12, 40, 200]):
    truth = rng.uniform(0, 100, n)
    a = np.clip(np.round(truth + rng.normal(0, 12, n)), 0, 100)
    b = np.clip(np.round(truth + rng.normal(5, 20, n)), 0, 100)
    a = [float(v) for v in a]
    b = [float(v) for v in b]
    for j in range(n // 10):  # some missing scores (refusals, no numeric mass)
        a[int(rng.integers(n))] = None
        b[int(rng.integers(n))] = None
    cases.append(case(f"noisy-{n}", a, b))
# Heavy ties (integer scores on a coarse grid) and fractional logprob expectations.
cases.append(case("ties", [0, 0, 10, 10, 10, 50, 50, 90, 100, 100], [0, 10, 10, 10, 20, 40, 60, 90, 90, 100]))
cases.append(case("fractional", [3.25, 47.5, 51.0, 88.125, 12.0, 66.6], [5.0, 52.25, 49.0, 80.0, 20.5, 70.0]))

with open(os.path.join(here, "agreement_cases.json"), "w") as f:
    json.dump(cases, f, indent=1)

inputs = [b"", b"abc", b"a" * 55, b"a" * 56, b"a" * 63, b"a" * 64, b"a" * 65, bytes(range(256)) * 5,
          "évil — ранг 🚀".encode("utf-8"), b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"]
with open(os.path.join(here, "sha256_cases.json"), "w") as f:
    json.dump([{"base64": base64.b64encode(b).decode(), "sha256": hashlib.sha256(b).hexdigest()} for b in inputs], f, indent=1)
