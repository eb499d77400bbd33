"""Win rate of a policy against a baseline under a judge, KL(policy || SFT) on samples, reward-vs-KL points.

Judges: the synthetic task's gold reward, or any local sequence-classification reward model (its first
logit is the reward, as for trl's RewardTrainer models). The KL is the Monte-Carlo estimate on policy
samples y ~ pi(.|x) at temperature 1 (no top-k / top-p, so the samples come from pi itself):

    KL(pi || pi_sft) ~= mean_{x, y ~ pi} [ log pi(y|x) - log pi_sft(y|x) ]     (sequence level, nats)
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402

from paperloom import UserError  # noqa: E402

from . import synthetic  # noqa: E402


def _device(model: Any) -> torch.device:
    return next(model.parameters()).device


@torch.no_grad()
def sample(model: Any, tokenizer: Any, prompts: Sequence[str], n: int = 1, max_new_tokens: int = 16,
           temperature: float = 1.0, seed: int = 0, batch_size: int = 64) -> list[list[list[int]]]:
    """`n` completions (token ids, cut after the first EOS) per prompt, sampled from the model itself.

    Prompts are batched by tokenized length, so no left padding is needed (any causal LM works).
    """
    was_training = model.training
    model.eval()
    eos = tokenizer.eos_token_id
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos
    enc = [tokenizer(p, add_special_tokens=False)["input_ids"] for p in prompts]
    if any(len(e) == 0 for e in enc):
        raise UserError("an evaluation prompt is empty; remove empty prompts from the data")
    groups: dict[int, list[int]] = defaultdict(list)
    for i, e in enumerate(enc):
        groups[len(e)].append(i)
    out: list[list[list[int]]] = [[] for _ in prompts]
    gen = torch.Generator(device="cpu").manual_seed(seed)
    dev = _device(model)
    for _, idx in sorted(groups.items()):
        rows = [i for i in idx for _ in range(n)]
        for s in range(0, len(rows), batch_size):
            chunk = rows[s: s + batch_size]
            ids = torch.tensor([enc[i] for i in chunk], device=dev)
            torch.manual_seed(int(torch.randint(0, 2**31 - 1, (1,), generator=gen)))
            seqs = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), do_sample=True, top_k=0,
                                  top_p=1.0, temperature=temperature, max_new_tokens=max_new_tokens, pad_token_id=pad,
                                  eos_token_id=eos)
            for i, row in zip(chunk, seqs[:, ids.shape[1]:].tolist()):
                out[i].append(row[: row.index(eos) + 1] if eos in row else row)
    model.train(was_training)
    return out


@torch.no_grad()
def sequence_logprobs(model: Any, tokenizer: Any, prompts: Sequence[str], completions: Sequence[list[int]],
                      batch_size: int = 64) -> torch.Tensor:
    """log pi(y|x) summed over the completion tokens, one value per (prompt, completion) pair."""
    was_training = model.training
    model.eval()
    dev = _device(model)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    result = torch.zeros(len(prompts), dtype=torch.float64)
    for s in range(0, len(prompts), batch_size):
        ps = [tokenizer(p, add_special_tokens=False)["input_ids"] for p in prompts[s: s + batch_size]]
        cs = list(completions[s: s + batch_size])
        seqs = [p + c for p, c in zip(ps, cs)]
        width = max(len(x) for x in seqs)
        ids = torch.full((len(seqs), width), pad, dtype=torch.long)
        mask = torch.zeros_like(ids)
        target = torch.zeros_like(ids, dtype=torch.bool)  # positions holding completion tokens
        for r, (p, c) in enumerate(zip(ps, cs)):
            ids[r, : len(p) + len(c)] = torch.tensor(p + c)
            mask[r, : len(p) + len(c)] = 1
            target[r, len(p): len(p) + len(c)] = True
        logits = model(input_ids=ids.to(dev), attention_mask=mask.to(dev)).logits.float()  # (B, T, V)
        logp = torch.log_softmax(logits[:, :-1], dim=-1).gather(-1, ids[:, 1:].to(dev).unsqueeze(-1)).squeeze(-1)
        result[s: s + len(seqs)] = (logp * target[:, 1:].to(dev)).sum(-1).double().cpu()
    model.train(was_training)
    return result


# --------------------------------------------------------------------------- judges


def gold_judge() -> Callable[[Sequence[str], Sequence[str]], list[float]]:
    """The synthetic task's hidden reward (`synthetic.gold_reward`)."""
    return lambda prompts, responses: [synthetic.gold_reward(p, r) for p, r in zip(prompts, responses)]


def reward_model_judge(path: str, device: str = "cpu", batch_size: int = 32) -> Callable[..., list[float]]:
    """A local sequence-classification checkpoint: reward = its first logit on prompt + response."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    folder = Path(path).expanduser()
    if not (folder / "config.json").is_file():
        raise UserError(f"judge = {path!r}: no checkpoint folder with config.json; pass 'gold' or a local "
                        "sequence-classification (reward model) folder")
    model = AutoModelForSequenceClassification.from_pretrained(str(folder), local_files_only=True).to(device).eval()
    tok = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    model.config.pad_token_id = tok.pad_token_id

    @torch.no_grad()
    def score(prompts: Sequence[str], responses: Sequence[str]) -> list[float]:
        out: list[float] = []
        for s in range(0, len(prompts), batch_size):
            texts = [p + r for p, r in zip(prompts[s: s + batch_size], responses[s: s + batch_size])]
            enc = tok(texts, return_tensors="pt", padding=True, truncation=True).to(device)
            out.extend(model(**enc).logits[:, 0].float().tolist())
        return out

    return score


def make_judge(judge: str, device: str = "cpu") -> Callable[..., list[float]]:
    return gold_judge() if judge == "gold" else reward_model_judge(judge, device)


# --------------------------------------------------------------------------- metrics


def decode(tokenizer: Any, completions: Sequence[list[int]]) -> list[str]:
    return tokenizer.batch_decode(completions, skip_special_tokens=True)


def policy_stats(policy: Any, sft: Any, tokenizer: Any, prompts: Sequence[str], judge: Callable, n: int = 4,
                 max_new_tokens: int = 16, temperature: float = 1.0, seed: int = 0,
                 batch_size: int = 64) -> tuple[dict, list[float]]:
    """Mean judge reward and KL(policy || sft) on `n` samples per prompt; also the rewards (prompt-major)."""
    comps = sample(policy, tokenizer, prompts, n, max_new_tokens, temperature, seed, batch_size)
    flat_p = [p for p, cs in zip(prompts, comps) for _ in cs]
    flat_c = [c for cs in comps for c in cs]
    rewards = judge(flat_p, decode(tokenizer, flat_c))
    stats = {"reward": sum(rewards) / len(rewards), "length": sum(map(len, flat_c)) / len(flat_c)}
    if sft is not None:
        lp = sequence_logprobs(policy, tokenizer, flat_p, flat_c, batch_size)
        lq = sequence_logprobs(sft, tokenizer, flat_p, flat_c, batch_size)
        stats["kl"] = float((lp - lq).mean())
    return stats, rewards


def win_rate(policy_rewards: Sequence[float], baseline_rewards: Sequence[float]) -> float:
    """Share of (policy, baseline) sample pairs the policy wins; ties count half."""
    if len(policy_rewards) != len(baseline_rewards) or not policy_rewards:
        raise ValueError("win_rate needs two equally long, non-empty reward lists")
    wins = sum(1.0 if a > b else 0.5 if a == b else 0.0 for a, b in zip(policy_rewards, baseline_rewards))
    return wins / len(policy_rewards)


def compare(policy: Any, baseline: Any, sft: Any, tokenizer: Any, prompts: Sequence[str], judge: Callable, n: int = 4,
            max_new_tokens: int = 16, temperature: float = 1.0, seed: int = 0, batch_size: int = 64) -> dict:
    """win_rate (policy vs baseline, same prompts), rewards of both, KL(policy || sft)."""
    kw = dict(n=n, max_new_tokens=max_new_tokens, temperature=temperature, batch_size=batch_size)
    pol, pr = policy_stats(policy, sft, tokenizer, prompts, judge, seed=seed, **kw)
    base, br = policy_stats(baseline, None, tokenizer, prompts, judge, seed=seed + 1, **kw)
    return {"win_rate": win_rate(pr, br), "reward": pol["reward"], "baseline_reward": base["reward"],
            "kl": pol["kl"], "length": pol["length"]}
