#!/usr/bin/env python3
"""Regenerate ruptures_more_cases.jsonl: ruptures 1.1.10 answers on settings the shared
fixture does not cover (jump > 1, min_size 5, longer series, n_bkps 3, penalised Binseg and
BottomUp). Tests read only the committed output; CI does not need ruptures.

    python3 Tests/Fixtures/changepoint/make_cases.py > Tests/Fixtures/changepoint/ruptures_more_cases.jsonl
    python3 Tests/Fixtures/changepoint/make_cases.py --sign-tests > Tests/Fixtures/changepoint/sign_tests.json
"""
import json
import warnings

import numpy as np
import ruptures as rpt

warnings.filterwarnings("ignore")  # CostNormal's "small bias" notice


def series(rng):
    out = []
    n = 240
    x = np.concatenate([rng.normal(0, 1, 80), rng.normal(3, 1, 90), rng.normal(1, 1, 70)])
    out.append(("long_steps", x))
    t = np.arange(200)
    judge = 100 / (1 + np.exp(-(t - 120) / 8)) + rng.normal(0, 6, t.size)
    out.append(("sigmoid_scores", np.clip(judge, 0, 100)))
    v = np.concatenate([rng.normal(0, 0.5, 60), rng.normal(0, 3, 60), rng.normal(0, 1, 60)])
    out.append(("variance_long", v))
    out.append(("noise_long", rng.normal(0, 1, 150)))
    q = np.concatenate([np.full(30, 2.0), np.full(30, 5.0), np.full(30, 2.0)])
    out.append(("noiseless_steps", q))
    out.append(("ramp_long", np.linspace(0, 10, 120) + rng.normal(0, 0.5, 120)))
    return out


def main():
    rng = np.random.default_rng(20260701)
    for name, x in series(rng):
        x = np.round(x, 6)
        n = len(x)
        cases = []
        for jump, min_size in ((1, 5), (3, 2), (5, 5), (4, 7)):
            for model in ("l2", "normal", "l1"):
                sigma = np.median(np.abs(np.diff(x) - np.median(np.diff(x)))) * 1.4826 / np.sqrt(2)
                d = 2 if model == "normal" else 1
                for pen in (3.0, max(float(sigma**2 * np.log(n) * d), 1e-3) if model != "normal" else 2 * np.log(n) * d):
                    b = rpt.Pelt(model=model, min_size=min_size, jump=jump).fit(x).predict(pen=pen)
                    cases.append(dict(algo="pelt", model=model, pen=pen, jump=jump, min_size=min_size, bkps=b))
                    for algo, cls in (("binseg", rpt.Binseg), ("bottomup", rpt.BottomUp)):
                        b = cls(model=model, min_size=min_size, jump=jump).fit(x).predict(pen=pen)
                        cases.append(dict(algo=algo, model=model, pen=pen, jump=jump, min_size=min_size, bkps=b))
                for k in (1, 3):
                    for algo, cls in (("binseg", rpt.Binseg), ("bottomup", rpt.BottomUp), ("dynp", rpt.Dynp)):
                        b = cls(model=model, min_size=min_size, jump=jump).fit(x).predict(n_bkps=k)
                        cases.append(dict(algo=algo, model=model, n_bkps=k, jump=jump, min_size=min_size, bkps=b))
        print(json.dumps(dict(name=name, signal=x.tolist(), cases=cases)))




def sign_tests():
    """Exact two-sided sign-test p-values from scipy, for Summaries.signTest."""
    from scipy.stats import binomtest
    rows = []
    for pos, neg in ((5, 0), (4, 1), (3, 3), (9, 1), (0, 7), (12, 8), (30, 10), (1, 0)):
        rows.append(dict(positive=pos, negative=neg, p=binomtest(pos, pos + neg, 0.5).pvalue))
    return rows


if __name__ == "__main__":
    import sys
    if "--sign-tests" in sys.argv:
        print(json.dumps(sign_tests()))
    else:
        main()
