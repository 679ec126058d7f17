"""Reference figures for CalibrationTests: a small calibration set with bands on two traits,
a judge's scores for every item (ties, unscored items and one band left empty on purpose),
and per trait the AUC (scipy's Mann-Whitney U over n_low * n_high), the band means and the
unscored share, computed here with numpy/scipy.

    python3 make_reference.py   # writes set.jsonl, scores.json, reference.json beside it
"""
import json, os
import numpy as np
from scipy.stats import mannwhitneyu

here = os.path.dirname(os.path.abspath(__file__))
rng = np.random.default_rng(20261203)
items, scores = [], {}
for i in range(40):
    item_id = f"fx-{i + 1:03d}"
    bands = {"alpha": ["low", "high", "any"][i % 3], "beta": ["high", "low"][(i // 2) % 2], "gamma": "any"}
    items.append({"id": item_id, "case": "fixture", "question": f"Question {i}?", "answer": f"Answer {i}.", "bands": bands})
    # Scores on a 0-100 scale, rounded to 5 so ties occur; high items higher on average.
    s = {}
    for trait in ("alpha", "beta"):
        centre = 70 if bands[trait] == "high" else 35
        s[trait] = float(np.clip(np.round(rng.normal(centre, 20) / 5) * 5, 0, 100))
    # Some items unscored on one trait (status other than ok).
    if i % 7 == 3:
        s["alpha"] = None
    if i % 11 == 5:
        s["beta"] = None
    scores[item_id] = s

reference = {}
for trait in ("alpha", "beta", "gamma"):
    low = [scores[it["id"]].get(trait) for it in items if it["bands"][trait] == "low"]
    high = [scores[it["id"]].get(trait) for it in items if it["bands"][trait] == "high"]
    banded = len(low) + len(high)
    low_s = [x for x in low if x is not None]
    high_s = [x for x in high if x is not None]
    entry = {"low_items": len(low), "high_items": len(high), "low_scored": len(low_s), "high_scored": len(high_s),
             "unscorable_fraction": (banded - len(low_s) - len(high_s)) / banded if banded else 0.0}
    if low_s and high_s:
        u = mannwhitneyu(high_s, low_s, alternative="two-sided").statistic
        entry["auc"] = float(u) / (len(low_s) * len(high_s))
        entry["mean_low"] = float(np.mean(low_s))
        entry["mean_high"] = float(np.mean(high_s))
    reference[trait] = entry

with open(os.path.join(here, "set.jsonl"), "w") as f:
    for it in items:
        f.write(json.dumps(it) + "\n")
with open(os.path.join(here, "scores.json"), "w") as f:
    json.dump(scores, f, indent=1, sort_keys=True)
with open(os.path.join(here, "reference.json"), "w") as f:
    json.dump(reference, f, indent=1, sort_keys=True)
print(json.dumps(reference, indent=1))
