#!/usr/bin/env python3
"""Reference for HoldoutSplit (Sources/MisalignModel/Training/HoldoutSplit.swift), written from
its documented procedure, independently of the Swift code:

  held = ceil(fraction * n) (IEEE double, as Hugging Face train_test_split sizes its test split)
  permutation of 0..n-1: Fisher-Yates from the end, swapping i and below(i + 1) of
  SplitMix64(seed, stream 0x401D) for i = n-1 .. 1; the first `held` entries are held out.

Run: python3 Tests/Fixtures/training/make_holdout_reference.py  (writes holdout_reference.json)
"""
import json
import math
import os

M = (1 << 64) - 1


class SplitMix64:
    def __init__(self, seed, stream=None):
        if stream is None:
            self.state = seed & M
        else:
            g = SplitMix64((seed ^ ((stream * 0xD1B54A32D192ED03) & M)) & M)
            self.state = g.next()

    def next(self):
        self.state = (self.state + 0x9E3779B97F4A7C15) & M
        z = self.state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M
        return z ^ (z >> 31)

    def below(self, n):
        return ((self.next() >> 32) * n) >> 32


def split(n, fraction, seed):
    held = math.ceil(fraction * n)
    g = SplitMix64(seed, 0x401D)
    idx = list(range(n))
    for i in range(n - 1, 0, -1):
        j = g.below(i + 1)
        idx[i], idx[j] = idx[j], idx[i]
    return sorted(idx[held:]), sorted(idx[:held])


cases = []
for n, fraction, seed in [(10, 0.1, 0), (30, 0.1, 0), (30, 0.1, 11), (7, 0.5, 22), (100, 0.1, 33), (2, 0.5, 0), (5, 0.001, 5)]:
    train, held = split(n, fraction, seed)
    cases.append({"count": n, "fraction": fraction, "seed": seed, "train": train, "held_out": held})
with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "holdout_reference.json"), "w") as f:
    json.dump({"cases": cases}, f, indent=1)
    f.write("\n")
