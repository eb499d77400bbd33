"""AlphaLLM benchmarks (run by `nox -s benchmarks`, or `python plugins/alphallm/benchmarks/alphallm.py`).

1. Node expansions per second: expanding a search node = generating its options (here 4 options of up to 24
   tokens after a 320-token state, greedy so every variant writes the same tokens). Compared side by side:
   - cached + batched (the plugin): the state is encoded once, its KV cache copied to the 4 rows, one decode;
   - per option (no prefix reuse): each option re-encodes the whole state, then decodes with its own cache;
   - no cache: every token re-runs the whole sequence (what a naive loop over `model(ids)` does).
   Target: >= 3x expansions/s over the per-option baseline.
2. Accuracy vs rollout budget of eta-MCTS vs re-ranking (and self-consistency, greedy) of independent samples
   at equal budgets, on a finished demo run's policy and critics (`--demo-run DIR`; skipped without one).
"""

from __future__ import annotations

import argparse
import os
import sys
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402


def expansions(layers: int = 4, width: int = 128, state_tokens: int = 320, options: int = 4, step_tokens: int = 24,
               repeats: int = 3, no_cache_too: bool = True) -> dict:
    from paperloom_alphallm.options import Stepper, sample_options, sample_options_uncached
    from paperloom_alphallm.synthetic import problem_tokenizer

    from paperloom.context import Run

    tok = problem_tokenizer()
    stepper = Stepper(tok, max_step_tokens=step_tokens)
    stepper.newline[:] = False  # a random model: no early stops, so every variant decodes step_tokens tokens
    torch.manual_seed(0)
    model = Run(out=".", plugin="alphallm", task="bench").build(
        "lm:gpt2", vocab_size=len(tok), n_layer=layers, n_embd=width, n_head=4, n_positions=1024).eval()
    prefix = torch.randint(3, len(tok), (state_tokens,)).tolist()

    @torch.no_grad()
    def no_cache() -> list[list[int]]:
        out = []
        for _ in range(options):
            ids, opt = list(prefix), []
            for _ in range(step_tokens):
                t = int(model(input_ids=torch.tensor([ids])).logits[0, -1].argmax())
                ids.append(t)
                opt.append(t)
            out.append(opt)
        return out

    variants = {
        "cached + batched": lambda: [o.ids for o in sample_options(model, prefix, options, stepper, 0.0)],
        "per option (re-encode state)": lambda: [o.ids for o in sample_options_uncached(model, prefix, options,
                                                                                           stepper, 0.0)],
    }
    if no_cache_too:
        variants["no cache"] = no_cache
    ref = variants["cached + batched"]()
    times: dict[str, list[float]] = {k: [] for k in variants}
    for _ in range(repeats):  # interleaved: machine load hits every variant alike
        for name, fn in variants.items():
            t0 = time.perf_counter()
            got = fn()
            times[name].append(time.perf_counter() - t0)
            assert got == ref, f"{name} wrote other tokens"  # greedy: token-identical
    med = {k: sorted(v)[len(v) // 2] for k, v in times.items()}
    return {k: 1.0 / v for k, v in med.items()}


def budget_curve(run: str, problems: int, budgets: list[int], workers: int) -> dict:
    import yaml
    from paperloom_alphallm import synthetic
    from paperloom_alphallm.config import SearchConfig
    from paperloom_alphallm.critics import Critics
    from paperloom_alphallm.evaluation import compare
    from paperloom_alphallm.model import load_critic
    from paperloom_alphallm.options import Stepper
    from paperloom_lm.hf import load_causal_lm

    from paperloom.context import Run

    cfg = yaml.safe_load(open(os.path.join(run, "config.yaml")))
    s = SearchConfig(**{k: v for k, v in cfg.get("search", {}).items()})
    policy = load_causal_lm(os.path.join(run, "policy")).eval()
    critic = load_critic(os.path.join(run, "critic"))
    stepper = Stepper(synthetic.problem_tokenizer())
    kw = {k: cfg[k] for k in ("min_ops", "max_ops", "max_operand", "max_start") if k in cfg}
    test = synthetic.arithmetic_problems(problems, 77_777, **kw)
    ctx = Run(out=run, plugin="alphallm", task="bench", workers=workers)
    m, _ = compare(ctx, policy, stepper, Critics(critic, stepper, s.b_value, s.b_prm, s.b_orm, s.orm), test, budgets, s)
    return m


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--demo-run", default="", help="a finished alphallm:demo run folder (policy/ and critic/)")
    p.add_argument("--problems", type=int, default=200)
    p.add_argument("--budgets", default="4,8,16,32,64")
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--threads", type=int, default=1)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    print(f"# AlphaLLM benchmarks (torch {torch.__version__}, {a.threads} thread(s), load {os.getloadavg()[0]:.1f})")
    print("\n## node expansions / s (k options x 24 tokens after a 320-token state, GPT-2 4x128, greedy)\n")
    print("| options per expansion | cached + batched | per option (re-encode state) | no cache | "
          "batched / per option |\n| ---: | ---: | ---: | ---: | ---: |")
    for k in (2, 4, 10):  # 2 = c_min(t), 10 = c_min(0) of Table 5
        r = expansions(options=k, no_cache_too=k <= 4)  # the no-cache loop is too slow to time at 10
        c, p, n = r["cached + batched"], r["per option (re-encode state)"], r.get("no cache", float("nan"))
        print(f"| {k} | {c:.2f} | {p:.2f} | {n:.3f} | {c / p:.2f}x |")
    if not a.demo_run:
        print("\n(accuracy vs budget: pass --demo-run DIR of a finished `core run alphallm:demo`)")
        return
    budgets = [int(b) for b in a.budgets.split(",")]
    m = budget_curve(a.demo_run, a.problems, budgets, a.workers)
    print(f"\n## accuracy vs rollout budget ({int(m['problems'])} held-out problems, +/- 1 SE)\n")
    print("| budget | eta-MCTS | re-ranking | self-consistency | greedy | MCTS options used | MCTS tokens |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for b in budgets:
        methods = ("mcts", "rerank", "sc", "greedy")
        cell = [f"{m[f'{k}_accuracy_b{b}']:.3f} +/- {m[f'{k}_se_b{b}']:.3f}" for k in methods]
        print(f"| {b} | " + " | ".join(cell) + f" | {m[f'mcts_rollouts_b{b}']:.1f} | {m[f'mcts_tokens_b{b}']:.0f} |")


if __name__ == "__main__":
    sys.exit(main())
