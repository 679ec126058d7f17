#!/usr/bin/env python3
"""Small example inputs for `misalign detect` (used in Docs/ChangePoint.md):

- example_scores.jsonl: one fine-tuning run, 3 judges x 50 checkpoints (every 2 steps)
  x 8 questions x 2 samples; hallucination rises around step 50, evil and coherence ~20 later.
- example_runs.jsonl: two datasets (medical, math) x 2 seeds, smaller.
- example_series.txt: a mean curve with a rise, one number per line.

    python3 Tests/Fixtures/changepoint/make_examples.py
"""
import json
import os

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))


def run(rng, out, midpoint, lag, checkpoints, questions, samples, extra):
    curves = [("evil", midpoint + lag, 5, 70), ("hallucination", midpoint, 10, 75), ("coherence", midpoint + lag, 90, 55)]
    for signal, mid, low, high in curves:
        offsets = rng.normal(0, 6, questions)
        shifts = rng.normal(0, 3, questions)
        for k in range(checkpoints):
            step = 2 * k
            for q in range(questions):
                mean = low + (high - low) / (1 + np.exp(-(step - shifts[q] - mid) / 5)) + offsets[q]
                for s in range(samples):
                    score = int(np.clip(np.round(mean + rng.normal(0, 12)), 0, 100))
                    rec = dict(signal=signal, step=step, question_id=f"q{q}", sample=s, score=score)
                    rec.update(extra)
                    out.write(json.dumps(rec, separators=(",", ":")) + "\n")


def main():
    rng = np.random.default_rng(7)
    with open(os.path.join(HERE, "example_scores.jsonl"), "w") as f:
        run(rng, f, 50, 20, 50, 8, 2, {})
    with open(os.path.join(HERE, "example_runs.jsonl"), "w") as f:
        for dataset, lag in (("medical", 20), ("math", 6)):
            for seed in (1, 2):
                run(rng, f, 40, lag, 40, 6, 1, dict(dataset=dataset, seed=seed))
    t = np.arange(80)
    x = 20 + 50 / (1 + np.exp(-(t - 45) / 3)) + rng.normal(0, 2, t.size)
    with open(os.path.join(HERE, "example_series.txt"), "w") as f:
        f.write("\n".join(f"{v:.3f}" for v in x) + "\n")


if __name__ == "__main__":
    main()
