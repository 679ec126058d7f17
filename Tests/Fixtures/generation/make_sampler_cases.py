#!/usr/bin/env python3
"""Sampler-chain parity cases from transformers' own logits processors.

Run: python3 Tests/Fixtures/generation/make_sampler_cases.py   (needs torch, transformers)
Writes sampler_cases.json: a list of cases, each
  {"name", "params": {temperature, top_k, top_p, min_p, repetition_penalty},
   "history": [ids], "logits": [floats] (f32 values), "kept": [ids surviving, ascending],
   "kept_logits": [the processed logit of each kept id, in that order]}
The chain is the one `generate` builds for do_sample=True: RepetitionPenalty, Temperature,
TopK, TopP, MinP (in that order); a token is kept when its processed score is not -inf.
"""
import json
import os

import torch
from transformers.generation.logits_process import (LogitsProcessorList, MinPLogitsWarper,
                                                    RepetitionPenaltyLogitsProcessor, TemperatureLogitsWarper,
                                                    TopKLogitsWarper, TopPLogitsWarper)

HERE = os.path.dirname(os.path.abspath(__file__))


def chain(p):
    procs = LogitsProcessorList()
    if p["repetition_penalty"] != 1:
        procs.append(RepetitionPenaltyLogitsProcessor(p["repetition_penalty"]))
    if p["temperature"] != 1:
        procs.append(TemperatureLogitsWarper(p["temperature"]))
    if p["top_k"] > 0:
        procs.append(TopKLogitsWarper(p["top_k"]))
    if p["top_p"] < 1:
        procs.append(TopPLogitsWarper(p["top_p"]))
    if p["min_p"] > 0:
        procs.append(MinPLogitsWarper(p["min_p"]))
    return procs


def main():
    g = torch.Generator().manual_seed(0)
    cases = []
    settings = [
        dict(temperature=1.0, top_k=0, top_p=1.0, min_p=0.0, repetition_penalty=1.0),
        dict(temperature=0.7, top_k=0, top_p=1.0, min_p=0.0, repetition_penalty=1.0),
        dict(temperature=1.0, top_k=40, top_p=1.0, min_p=0.0, repetition_penalty=1.0),
        dict(temperature=1.0, top_k=0, top_p=0.9, min_p=0.0, repetition_penalty=1.0),
        dict(temperature=1.0, top_k=0, top_p=1.0, min_p=0.05, repetition_penalty=1.0),
        dict(temperature=1.0, top_k=0, top_p=1.0, min_p=0.0, repetition_penalty=1.3),
        dict(temperature=0.8, top_k=50, top_p=0.95, min_p=0.02, repetition_penalty=1.1),
        dict(temperature=1.5, top_k=5, top_p=0.5, min_p=0.0, repetition_penalty=0.9),
    ]
    shapes = ["normal", "peaked", "ties", "flat"]
    for si, p in enumerate(settings):
        for shape in shapes:
            V = 400
            if shape == "normal":
                logits = torch.randn(V, generator=g) * 3
            elif shape == "peaked":
                logits = torch.randn(V, generator=g)
                logits[torch.randint(0, V, (3,), generator=g)] += 15
            elif shape == "ties":
                logits = torch.randint(-3, 4, (V,), generator=g).float()
            else:
                logits = torch.randn(V, generator=g) * 0.01
            history = torch.randint(0, V, (30,), generator=g)
            scores = chain(p)(history[None], logits[None].clone())[0]
            kept = torch.nonzero(scores != float("-inf")).flatten()
            cases.append({
                "name": f"setting{si}-{shape}", "params": p, "history": history.tolist(),
                "logits": [float(x) for x in logits], "kept": kept.tolist(),
                "kept_logits": [float(scores[i]) for i in kept],
            })
    with open(os.path.join(HERE, "sampler_cases.json"), "w") as f:
        json.dump(cases, f)
    print(len(cases), "cases")


if __name__ == "__main__":
    main()
