"""What llama/make_llama.py and gemma2/make_gemma2.py both record from a tiny transformers model
(imported by them; not run on its own). Tensor names are the ones FamilyReference reads in
Tests/MisalignCoreTests/Support/FamilyReference.swift."""
import os

import torch

ALL = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def record_prompts(model, g, t, vocab=512):
    """Two random prompts (9 and 4 tokens): ids, every hidden state and the logits; then 16
    greedy tokens after the first. Returns the prompts."""
    prompts = [torch.randint(3, vocab, (n,), generator=g).tolist() for n in (9, 4)]
    for i, ids in enumerate(prompts):
        out = model(torch.tensor([ids]), output_hidden_states=True)
        t[f"prompt{i}.ids"] = torch.tensor(ids, dtype=torch.int64)
        for k, h in enumerate(out.hidden_states):
            t[f"prompt{i}.hidden{k}"] = h[0].contiguous()
        t[f"prompt{i}.logits"] = out.logits[0].contiguous()
    gen = model.generate(torch.tensor([prompts[0]]), max_new_tokens=16, do_sample=False, eos_token_id=None, pad_token_id=0)
    t["greedy.ids"] = gen[0, len(prompts[0]):].to(torch.int64).contiguous()
    return prompts


def record_lora(model, g, t, adapter_dir, prompt0, vocab=512):
    """A PEFT adapter on all seven projections (r 4, alpha 8, lora_B drawn N(0, 0.1)) saved to
    adapter_dir, its logits on prompt0, and the gradient of one right-padded batch of two
    sequences (11 and 7 tokens) w.r.t. every LoRA tensor, the loss being the sum of the target
    cross-entropies over the target count (transformers 5). Returns (loss, target count)."""
    from peft import LoraConfig, get_peft_model
    torch.manual_seed(5)
    pm = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, target_modules=ALL, lora_dropout=0.0, bias="none", task_type="CAUSAL_LM"))
    gb = torch.Generator().manual_seed(6)
    for n, p in pm.named_parameters():
        if "lora_B" in n:
            p.copy_(torch.randn(p.shape, generator=gb) * 0.1)
    pm.save_pretrained(adapter_dir)
    readme = os.path.join(adapter_dir, "README.md")  # PEFT's model card, not needed here
    if os.path.exists(readme):
        os.remove(readme)
    pm.eval()
    t["lora.prompt0.logits"] = pm(torch.tensor([prompt0])).logits[0].contiguous()

    seqs = [torch.randint(3, vocab, (n,), generator=g).tolist() for n in (11, 7)]
    masks = [[0] * 4 + [1] * 7, [0] * 3 + [1] * 4]
    T = max(len(s) for s in seqs)
    ids = torch.zeros((2, T), dtype=torch.int64)
    att = torch.zeros((2, T), dtype=torch.int64)
    labels = torch.full((2, T), -100, dtype=torch.int64)
    for b, (s, m) in enumerate(zip(seqs, masks)):
        ids[b, :len(s)] = torch.tensor(s)
        att[b, :len(s)] = 1
        for j, on in enumerate(m):
            if on:
                labels[b, j] = s[j]
        t[f"grad.seq{b}.ids"] = torch.tensor(s, dtype=torch.int64)
        t[f"grad.seq{b}.mask"] = torch.tensor(m, dtype=torch.int64)
    torch.set_grad_enabled(True)
    pm.train()
    logits = pm(input_ids=ids, attention_mask=att).logits
    shift = logits[:, :-1].reshape(-1, logits.shape[-1])
    target = labels[:, 1:].reshape(-1)
    n = (target != -100).sum()
    loss = torch.nn.functional.cross_entropy(shift, target, ignore_index=-100, reduction="sum") / n
    loss.backward()
    for name, p in pm.named_parameters():
        if p.requires_grad:
            t["grad." + name.replace(".default", "")] = p.grad.detach().clone().contiguous()
    return loss, int(n)
