"""Task schemas of the alphallm plugin (plain dataclasses: importing this loads no torch).

Paper values (Tian et al. 2024, Table 5 "Parameters for MCTS" and Sec. 5.1) live only in
``configs/<task>/paper.yaml``, each with its source; ``configs/<task>.yaml`` hold the tasks' defaults.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from paperloom_lm.config import model_field

from paperloom.config import option
from paperloom.contracts import CRITIC  # noqa: F401  (plugin.py imports both from here)
from paperloom.contracts import REASONING_PROBLEMS as PROBLEMS
from paperloom.schemas import OptimConfig, TrainerConfig


@dataclass
class SearchConfig:
    """eta-MCTS (Sec. 4.3) and the critic weights of its score (Sec. 4.4)."""

    c: float = option(1.0, min=0, help="PUCT exploration constant c")
    alpha: float = option(1.0, min=0, help="adaptive branching: n(s) grows by floor(alpha * I(s))")
    c_min0: int = option(10, min=1, help="c_min(0): fewest children of the root")
    c_min: int = option(2, min=1, help="c_min(t), t > 0: fewest children of a deeper node")
    c_max0: int = option(60, min=1, help="c_max(0): most children of the root")
    c_max: int = option(10, min=1, help="c_max(t), t > 0: most children of a deeper node")
    merge_threshold: int = option(0, min=0, help="state merge: a new option within this edit distance (characters) "
                                               "of a sibling is resampled")
    merge_tries: int = option(2, min=0, help="state merge: resamples before keeping the most distinct candidate")
    fast_rollouts: int = option(4, min=0, help="fast rollouts per new node, scored by the ORM (0: none)")
    rollouts: int = option(32, min=1, help="budget: options generated per problem (tree + fast rollouts)")
    max_tokens: int = option(0, min=0, help="budget: generated tokens per problem (0: no token budget)")
    max_depth: int = option(12, min=1, help="deepest option level searched")
    temperature: float = option(1.0, min=0, help="sampling temperature of options and rollouts")
    answer: str = option("best-leaf", choices=("best-leaf", "vote"),
                         help="best-leaf: the trajectory whose leaf scores highest (Sec. 4.5); vote: score-weighted "
                              "vote over every complete trajectory")
    orm: str = option("learned", choices=("learned", "exact", "none"),
                      help="ORM: the critic's orm head, the exact checker (right '#### n' answer by valid steps; needs "
                           "gold answers), or none")
    b_value: float = option(1.0, min=0, help="weight of the value function in the score")
    b_prm: float = option(1.0, min=0, help="weight of the PRM in the score")
    b_orm: float = option(1.0, min=0, help="weight of the mean fast-rollout ORM in the score")


@dataclass
class CriticTrainConfig:
    """Critic training data (policy rollouts on problems with answers) and its optimisation."""

    problems: int = option(256, min=1, help="problems rolled out")
    samples: int = option(8, min=1, help="trajectories sampled per problem (the paper: 50)")
    heads: list[str] = option(["value", "prm", "orm"], help="critic heads trained: value, prm, orm")
    temperature: float = option(1.0, min=0, help="sampling temperature of the rollouts")
    optim: OptimConfig = option(default_factory=lambda: OptimConfig(lr=1e-3, min_lr=1e-4, warmup_steps=10,
                                                                    weight_decay=0.0))
    trainer: TrainerConfig = option(default_factory=lambda: TrainerConfig(max_steps=200, batch_size=32,
                                                                          checkpoint_every=100, log_every=20))


def policy_field() -> Any:
    return model_field("lm:gpt2", "the policy")


@dataclass
class PolicyFields:
    """The policy every task but the demo starts from (the fields come first in each task's schema)."""

    policy: str = policy_field()
    policy_args: dict[str, Any] = option({}, help="keyword arguments for the policy builder")
    tokenizer: str = option("", help="tokenizer folder; empty: the policy folder's, else the demo's problem "
                                     "tokenizer (numbers and words as tokens)")


@dataclass
class SynthesizeConfig(PolicyFields):
    """Imagination (Sec. 4.2): new problems written by the policy from few-shot seed questions, filtered;
    or, for a verifiable domain, drawn from a problem generator (a dataset component)."""

    seeds: str = option("alphallm:arithmetic", component="dataset", contract=PROBLEMS,
                        help="seed problems: alphallm:gsm8k (path=...) or alphallm:arithmetic")
    seeds_args: dict[str, Any] = option({"n": 64}, help="keyword arguments for the seed dataset")
    generator: str = option("", help="a problem-generator dataset component (e.g. alphallm:arithmetic): problems "
                                     "come from it, with answers, instead of from the policy")
    generator_args: dict[str, Any] = option({}, help="keyword arguments for the generator")
    n: int = option(64, min=1, help="problems to synthesize")
    shots: int = option(3, min=1, help="seed questions shown per synthesis prompt")
    temperature: float = option(1.0, min=0, help="sampling temperature")
    critic: str = option("", help="critic folder (train-critics' critic/): keep questions whose value lies in "
                                  "[min_value, max_value]; empty: no value filter")
    min_value: float = option(0.0, min=0, max=1, help="drop questions the critic finds hopeless")
    max_value: float = option(1.0, min=0, max=1, help="drop questions the critic finds trivial")
    min_distance: int = option(3, min=0, help="drop questions within this edit distance of a seed or a kept one")


@dataclass
class SearchTaskConfig(PolicyFields):
    """Decode a problem set with eta-MCTS; trajectories (and accuracy, where answers are known) to JSONL."""

    rollout_policy: str = option("", help="the fast rollout policy (a smaller causal LM folder); empty: the policy")
    critic: str = option("", help="critic folder (train-critics' critic/); empty: no learned critics")
    data: str = option("alphallm:arithmetic", component="dataset", contract=PROBLEMS,
                       help="problems: alphallm:gsm8k (path=...) or alphallm:arithmetic")
    data_args: dict[str, Any] = option({}, help="keyword arguments for the dataset")
    problems: int = option(0, min=0, help="search the first N problems (0: all)")
    search: SearchConfig = option(default_factory=SearchConfig)


@dataclass
class TrainCriticsConfig(PolicyFields):
    """Roll out the policy on problems with answers and fit the value / PRM / ORM critics on the returns."""

    data: str = option("alphallm:arithmetic", component="dataset", contract=PROBLEMS, help="problems with answers")
    data_args: dict[str, Any] = option({}, help="keyword arguments for the dataset")
    critics: CriticTrainConfig = option(default_factory=CriticTrainConfig)


@dataclass
class EvaluateConfig(PolicyFields):
    """Greedy, self-consistency, re-ranking and eta-MCTS at equal rollout budgets on problems with answers."""

    rollout_policy: str = option("", help="the fast rollout policy folder; empty: the policy")
    critic: str = option("", help="critic folder; empty: no learned critics")
    data: str = option("alphallm:arithmetic", component="dataset", contract=PROBLEMS, help="held-out problems")
    data_args: dict[str, Any] = option({"split": "test"}, help="keyword arguments for the dataset")
    problems: int = option(0, min=0, help="evaluate the first N problems (0: all)")
    budgets: list[int] = option([16, 32], help="rollout budgets (options per problem) compared")
    search: SearchConfig = option(default_factory=SearchConfig)


@dataclass
class ImproveSettings:
    """One self-improvement round (Sec. 4.5): search, keep, fine-tune, retrain critics."""

    rounds: int = option(2, min=1, help="self-improvement rounds R")
    problems: int = option(256, min=1, help="problems searched per round (imagination: fresh ones each round)")
    keep: str = option("exact", choices=("exact", "score"),
                       help="filter f: exact (a trajectory of the tree with the right answer by valid steps, where "
                            "problems carry answers) or score (the chosen trajectory's critic score > threshold, the "
                            "paper's ORM filter)")
    threshold: float = option(0.5, min=0, max=1, help="gamma: the score a kept trajectory must exceed")
    optim: OptimConfig = option(default_factory=lambda: OptimConfig(lr=1e-3, min_lr=1e-4, warmup_steps=10,
                                                                    weight_decay=0.0))
    trainer: TrainerConfig = option(default_factory=lambda: TrainerConfig(max_steps=100, batch_size=32,
                                                                          checkpoint_every=100, log_every=20))
    retrain_critics: bool = option(True, help="refit the critics on the new policy's rollouts after each round")


@dataclass
class ImproveConfig(PolicyFields):
    """The self-improvement loop: R rounds of eta-MCTS -> filter -> SFT -> critics; accuracy per round."""

    critic: str = option("", help="critic folder to start from; empty: trained from the policy's rollouts")
    data: str = option("alphallm:arithmetic", component="dataset", contract=PROBLEMS,
                       help="training problems (the prompts searched)")
    data_args: dict[str, Any] = option({}, help="keyword arguments for the training problems")
    eval_data: str = option("alphallm:arithmetic", component="dataset", contract=PROBLEMS,
                            help="held-out problems for the accuracy per round")
    eval_data_args: dict[str, Any] = option({"split": "test", "n": 100}, help="keyword arguments for them")
    search: SearchConfig = option(default_factory=SearchConfig)
    critics: CriticTrainConfig = option(default_factory=CriticTrainConfig)
    improve: ImproveSettings = option(default_factory=ImproveSettings)


@dataclass
class DemoConfig:
    """Tiny policy on generated arithmetic word problems: critics, eta-MCTS vs greedy / self-consistency /
    re-ranking at equal budgets, and self-improvement rounds."""

    policy: str = policy_field()
    policy_args: dict[str, Any] = option({"n_layer": 2, "n_embd": 128, "n_head": 4, "n_positions": 256},
                                         help="keyword arguments for the policy builder (sizes)")
    train_problems: int = option(20000, min=1, help="generated problems the policy is pre-trained on")
    test_problems: int = option(200, min=1, help="held-out problems every method is judged on")
    min_ops: int = option(2, min=1, help="fewest days (steps) per problem")
    max_ops: int = option(3, min=1, help="most days (steps) per problem")
    max_operand: int = option(5, min=1, help="largest daily change")
    max_start: int = option(20, min=2, help="largest starting count")
    pretrain_steps: int = option(600, min=1, help="policy pre-training steps (sets its greedy accuracy)")
    pretrain_lr: float = option(3e-3, min=0, help="policy pre-training peak learning rate")
    pretrain_target: float = option(0.4, min=0, max=1, help="stop pre-training at the first check where greedy "
                                                           "accuracy on the dev problems reaches this (0: never)")
    pretrain_check_every: int = option(25, min=1, help="steps between those checks")
    dev_problems: int = option(100, min=1, help="generated problems (apart from train and test) for those checks")
    batch_size: int = option(32, min=1, help="sequences per training step")
    budgets: list[int] = option([8, 16, 32], help="rollout budgets (options per problem) compared")
    search: SearchConfig = option(default_factory=SearchConfig)
    critics: CriticTrainConfig = option(default_factory=CriticTrainConfig)
    improve: ImproveSettings = option(default_factory=lambda: ImproveSettings(rounds=1))
    margin_se: float = option(2.0, min=0, help="a claim holds when its difference exceeds this many standard errors")
    threads: int = option(1, min=0, help="torch CPU threads (1 is fastest at this size and on a busy machine)")
