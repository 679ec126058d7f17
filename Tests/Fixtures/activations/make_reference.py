#!/usr/bin/env python3
"""Reference hidden states, a trait vector and projections for the activation tests.

Run: python3 Tests/Fixtures/activations/make_reference.py   (after ../safetensors/make_fixtures.py)
Needs torch, transformers, safetensors. Float32, eager attention, CPU. CI never runs it.

Model: ../qwen2-small (f32, 2 layers, hidden 64). `output_hidden_states=True` gives, in
transformers 5.24, num_hidden_layers + 1 entries: [0] the embedding output (the input of
layer 0), [i] for 0 < i < L the output of layer i - 1, and [L] the output of the last layer
*after* the final norm (`model.norm`); the script checks that last point with a hook.

Writes activations/reference.safetensors (float32 unless noted):
  prompt{i}.ids        [T_i] int64      token ids (random, seeded), lengths 9, 16, 4
  prompt{i}.hidden     [L+1, T_i, H]    torch.stack(out.hidden_states)[:, 0]
  sample{j}.ids        [T_j] int64      prompt + response token ids of vector sample j
  sample{j}.response_avg [L+1, H]       hidden_states[l][:, prompt_len:].mean(1), every l
  sample{j}.prompt_last  [L+1, H]       hidden_states[l][:, prompt_len - 1], every l
  vector               [L+1, H]         mean over positive samples of response_avg minus the
                                        mean over negative samples (persona_vectors'
                                        `*_response_avg_diff`, each sample weighted once)
and activations/reference.json: the samples (ids, prompt_len, side), and per sample and
layer the projections (h . v) / |v| of response_avg and prompt_last onto vector[layer],
computed in float64 from the float32 states.

It also saves `vector` with torch.save as the Python reference does and converts that .pt
with the two lines Docs/ActivationSignals.md documents, giving
activations/evil_response_avg_diff.safetensors (one tensor, named "evil"); the .pt itself is
not kept.
"""
import json
import os
import tempfile

import torch
from safetensors.torch import save_file

HERE = os.path.dirname(os.path.abspath(__file__))
FIX = os.path.dirname(HERE)
torch.set_grad_enabled(False)


def hidden_states(model, ids):
    """All L+1 hidden states of one sequence, [L+1, T, H], with the last one checked."""
    last_layer_out = []
    hook = model.model.layers[-1].register_forward_hook(
        lambda m, a, o: last_layer_out.append((o[0] if isinstance(o, tuple) else o).clone()))
    out = model(torch.tensor([ids]), output_hidden_states=True)
    hook.remove()
    hs = out.hidden_states
    assert len(hs) == model.config.num_hidden_layers + 1
    # The last entry is the final norm's output, not the last layer's raw output.
    assert torch.allclose(hs[-1], model.model.norm(last_layer_out[0]), atol=0, rtol=0)
    assert not torch.allclose(hs[-1], last_layer_out[0])
    return torch.stack(hs)[:, 0]


def main():
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(os.path.join(FIX, "qwen2-small"), attn_implementation="eager").float().eval()
    t = {}
    g = torch.Generator().manual_seed(2121)
    for i, n in enumerate((9, 16, 4)):
        ids = torch.randint(0, 512, (n,), generator=g).tolist()
        t[f"prompt{i}.ids"] = torch.tensor(ids, dtype=torch.int64)
        t[f"prompt{i}.hidden"] = hidden_states(model, ids)

    # Vector samples: fixed token sequences standing in for answers generated under the
    # positive and negative system prompts (prompt = system + question, response = answer).
    samples = []
    for j, (side, plen, rlen) in enumerate([("pos", 6, 5), ("pos", 9, 3), ("pos", 4, 8),
                                            ("neg", 7, 4), ("neg", 5, 6), ("neg", 8, 1)]):
        ids = torch.randint(0, 512, (plen + rlen,), generator=g).tolist()
        samples.append({"side": side, "ids": ids, "prompt_len": plen})

    response_avg, prompt_last = {"pos": [], "neg": []}, {"pos": [], "neg": []}
    for j, s in enumerate(samples):
        hs = hidden_states(model, s["ids"])           # [L+1, T, H]
        p = s["prompt_len"]
        ra = hs[:, p:, :].mean(dim=1)                  # persona_vectors: hidden_states[l][:, prompt_len:].mean(1)
        pl = hs[:, p - 1, :]                           # hidden_states[l][:, prompt_len - 1]
        t[f"sample{j}.ids"] = torch.tensor(s["ids"], dtype=torch.int64)
        t[f"sample{j}.response_avg"] = ra
        t[f"sample{j}.prompt_last"] = pl
        response_avg[s["side"]].append(ra)
        prompt_last[s["side"]].append(pl)
    vector = (torch.stack(response_avg["pos"]).mean(0).float() - torch.stack(response_avg["neg"]).mean(0).float())
    t["vector"] = vector

    # Projections, float64: (h . v) / |v| per layer.
    def proj(h, v):
        h, v = h.double(), v.double()
        return ((h * v).sum(-1) / v.norm(dim=-1)).tolist()

    for j, s in enumerate(samples):
        s["response_avg_proj"] = proj(t[f"sample{j}.response_avg"], vector)
        s["prompt_last_proj"] = proj(t[f"sample{j}.prompt_last"], vector)

    t = {k: v.contiguous() for k, v in t.items()}
    save_file(t, os.path.join(HERE, "reference.safetensors"), metadata={"torch": torch.__version__, "note": "see make_reference.py"})

    # The Python reference's file, then the documented conversion (Docs/ActivationSignals.md).
    with tempfile.TemporaryDirectory() as tmp:
        pt = os.path.join(tmp, "evil_response_avg_diff.pt")
        torch.save(vector.clone(), pt)
        out = os.path.join(HERE, "evil_response_avg_diff.safetensors")
        # The snippet, with its file names replaced by these paths:
        #   import torch; from safetensors.torch import save_file
        #   save_file({"evil": torch.load("evil_response_avg_diff.pt", map_location="cpu").float().contiguous()}, "evil_response_avg_diff.safetensors")
        save_file({"evil": torch.load(pt, map_location="cpu").float().contiguous()}, out)

    import transformers
    with open(os.path.join(HERE, "reference.json"), "w") as f:
        json.dump({"torch": torch.__version__, "transformers": transformers.__version__,
                   "layers_plus_one": model.config.num_hidden_layers + 1, "hidden": model.config.hidden_size,
                   "samples": samples}, f, indent=1)
    print("activations reference written")


if __name__ == "__main__":
    main()
