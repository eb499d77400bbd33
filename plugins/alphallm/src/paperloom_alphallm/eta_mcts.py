"""eta-MCTS (Sec. 4.3): option-level MCTS with importance-based adaptive branching, state merge and fast
rollouts, guided by the three critics (Sec. 4.4).

One simulation: *selection* from the root by PUCT until a node that may still grow; *expansion* by
sampling options from its state (batched, the state's KV cache shared); *simulation*: each new node gets its
value v([s, o]), PRM(s, o) and the mean ORM of `fast_rollouts` completions by the rollout policy; their
weighted sum (Sec. 4.4, scaled to [0, 1] by the sum of the weights) is *backed up*: N += 1 and W += score on
the node and every ancestor, so N(node) = 1 + sum N(children) always holds (a node is counted when it is
created; terminal nodes are never re-selected).

Budgets: ``rollouts`` counts every option generated (tree candidates, merged ones included, and every step of
every fast rollout) and ``max_tokens`` every generated token; search stops when either is spent.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch

from .critics import Critics
from .data import extract_answer, prompt
from .options import Option, Stepper, n_steps, rollout, sample_options


class Node:
    """A search state: the parent's state + one option. N visits, W summed scaled scores, Q = W / N."""

    def __init__(self, state: list[int], option: Option | None, parent: Node | None, depth: int) -> None:
        self.state, self.option, self.parent, self.depth = state, option, parent, depth
        self.children: list[Node] = []
        self.N, self.W = 0, 0.0
        self.value = 0.0  # v(state) from the value critic
        self.score = 0.0  # the scaled weighted score of Sec. 4.4 when the node was created
        self.width: int | None = None  # n(s): children allowed, set after the first expansion
        self.closed = False  # nothing left to search below (all children terminal / closed, no room to grow)
        self.terminal = bool(option and option.terminal)

    @property
    def Q(self) -> float:
        return self.W / self.N if self.N else 0.0

    def path(self) -> list[Node]:
        node, out = self, []
        while node.parent is not None:
            out.append(node)
            node = node.parent
        return out[::-1]

    def text(self) -> str:
        return "".join(n.option.text for n in self.path())


# --------------------------------------------------------------------------- the paper's formulas


def puct(q: float, prior: float, n_parent: int, n_child: int, c: float) -> float:
    """Selection score: Q(s, o) + c * pi(o | s) * sqrt(N(s)) / (1 + N(s, o))  (PUCT, Sec. 4.3 / App. 7.2)."""
    return q + c * prior * math.sqrt(n_parent) / (1 + n_child)


def priors(children: list[Node]) -> list[float]:
    """pi(o | s) over siblings: per-token probability exp(logprob / len) of each option, normalised, so long
    and short options compete on the policy's confidence rather than on length."""
    raw = [math.exp(c.option.logprob / max(1, len(c.option.ids))) for c in children]
    total = sum(raw) or 1.0
    return [r / total for r in raw]


def select_child(node: Node, c: float) -> Node:
    """argmax over the open children of `node` of PUCT (first one on ties)."""
    open_children = [ch for ch in node.children if not ch.closed and not ch.terminal]
    ps = dict(zip(map(id, node.children), priors(node.children)))
    return max(open_children, key=lambda ch: puct(ch.Q, ps[id(ch)], node.N, ch.N, c))


def importance(v_state: float, child_values: list[float]) -> float:
    """I(s) = max_o |v([s, o]) - v(s)|  (Sec. 4.3.2)."""
    return max((abs(v - v_state) for v in child_values), default=0.0)


def branching(imp: float, depth: int, alpha: float, c_min: tuple[int, int], c_max: tuple[int, int]) -> int:
    """n(s) = max(c_min(t), min(floor(alpha * I(s)) + 1, c_max(t))); c_*(t) is (value at t = 0, value at t > 0)."""
    lo, hi = (c_min[0], c_max[0]) if depth == 0 else (c_min[1], c_max[1])
    return max(lo, min(math.floor(alpha * imp) + 1, hi))


def backup(node: Node | None, value: float) -> None:
    """Backpropagation: N += 1 and W += value on the node and every ancestor."""
    while node is not None:
        node.N += 1
        node.W += value
        node = node.parent


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance (insertions, deletions, substitutions), two rows of the DP table."""
    if len(a) < len(b):
        a, b = b, a
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def most_distinct(candidates: list[str], siblings: list[str]) -> tuple[int, float]:
    """State merge (Sec. 4.3.3): the candidate whose smallest edit distance to the siblings is largest, and
    that distance (inf without siblings); the first such candidate on ties."""
    best, best_d = -1, -1.0
    for i, cand in enumerate(candidates):
        d = min((edit_distance(cand, s) for s in siblings), default=math.inf)
        if d > best_d:
            best, best_d = i, d
    return best, best_d


# --------------------------------------------------------------------------- the search


@dataclass
class SearchResult:
    text: str  # the chosen solution (options joined)
    answer: str  # its '#### n' answer, or '[invalid]'
    score: float
    rollouts: int  # options generated
    tokens: int  # tokens generated
    nodes: int  # tree size (the paper's "#rollouts")
    simulations: int
    candidates: list[dict] = field(default_factory=list)  # every complete trajectory found, with its score


class EtaMCTS:
    """eta-MCTS over one policy (any causal LM), an optional smaller rollout policy, and the critics."""

    def __init__(self, policy: Any, stepper: Stepper, critics: Critics, cfg: Any, rollout_policy: Any = None,
                 generator: torch.Generator | None = None) -> None:
        self.policy, self.stepper, self.critics, self.cfg = policy, stepper, critics, cfg
        self.fast = rollout_policy if rollout_policy is not None else policy
        self.gen = generator
        self.rollouts = self.tokens = 0
        self.finished: list[dict] = []

    def spent(self) -> bool:
        c = self.cfg
        return self.rollouts >= c.rollouts or bool(c.max_tokens and self.tokens >= c.max_tokens)

    def search(self, question: str, gold: str | None = None) -> SearchResult:
        self.critics.gold = gold
        self.rollouts = self.tokens = 0
        self.finished = []
        root = Node(self.stepper.encode(prompt(question)), None, None, 0)
        root.value = self.critics.evaluate([root.state])["value"][0]
        root.score = root.value
        backup(root, root.score)
        sims = 0
        while not self.spent() and not root.closed and sims < 10 * self.cfg.rollouts + 10:
            sims += 1
            node = root
            while True:
                if node.depth >= self.cfg.max_depth:
                    node.closed = True
                    break
                if node.width is None or len(node.children) < node.width:
                    self.expand(node)
                    break
                if all(ch.closed or ch.terminal for ch in node.children):
                    node.closed = True
                    break
                node = select_child(node, self.cfg.c)
            self._close_up(node)
        return self._result(root, sims)

    def _close_up(self, node: Node) -> None:
        """A node whose children are all terminal/closed and which may not grow is closed, and so upward."""
        while node is not None and node.width is not None and len(node.children) >= node.width and all(
                ch.closed or ch.terminal for ch in node.children):
            node.closed = True
            node = node.parent

    def expand(self, node: Node) -> None:
        first = node.width is None
        cfg = self.cfg
        k = (cfg.c_min0 if node.depth == 0 else cfg.c_min) if first else 1
        new = self._new_options(node, k)
        if not new:  # every resample merged into an existing sibling: this node has no more distinct options
            node.width = len(node.children)
            return
        children = [Node(node.state + o.ids, o, node, node.depth + 1) for o in new]
        node.children.extend(children)
        self._evaluate(children)
        if first:  # importance-based adaptive branching, from the values of the first children
            imp = importance(node.value, [ch.value for ch in node.children])
            node.width = branching(imp, node.depth, cfg.alpha, (cfg.c_min0, cfg.c_min), (cfg.c_max0, cfg.c_max))

    def _new_options(self, node: Node, k: int) -> list[Option]:
        """k options for `node`, each resampled (up to merge_tries times) until its edit distance to its
        siblings exceeds merge_threshold; when that fails, the most distinct candidate is kept unless it
        duplicates a sibling exactly (then it is merged, i.e. dropped)."""
        cfg = self.cfg
        siblings = [ch.option.text for ch in node.children]
        kept: list[Option] = []
        pool: list[Option] = []
        for _ in range(cfg.merge_tries + 1):
            if len(kept) >= k or self.spent():
                break
            cands = sample_options(self.policy, node.state, k - len(kept), self.stepper, cfg.temperature, self.gen)
            self.rollouts += len(cands)
            self.tokens += sum(len(o.ids) for o in cands)
            pool.extend(cands)
            while pool and len(kept) < k:
                i, d = most_distinct([o.text for o in pool], siblings + [o.text for o in kept])
                if d <= cfg.merge_threshold:
                    break
                kept.append(pool.pop(i))
        if len(kept) < k and pool:
            i, d = most_distinct([o.text for o in pool], siblings + [o.text for o in kept])
            if d > 0 or not (siblings or kept):
                kept.append(pool.pop(i))
        return kept

    def _evaluate(self, children: list[Node]) -> None:
        """Score new nodes (Sec. 4.4) and back each score up the tree."""
        cfg, crit = self.cfg, self.critics
        heads = crit.evaluate([ch.state for ch in children])
        for i, ch in enumerate(children):
            ch.value = heads["value"][i]
            if ch.terminal:
                orm = crit.orm_of(ch.state, ch.text())
                self.finished.append({"text": ch.text(), "orm": orm, "node": ch})
            elif cfg.fast_rollouts and not self.spent():
                outs = rollout(self.fast, ch.state, cfg.fast_rollouts, self.stepper, cfg.temperature, self.gen)
                self.rollouts += sum(n_steps(o.text) for o in outs)
                self.tokens += sum(len(o.ids) for o in outs)
                scores = [crit.orm_of(ch.state + o.ids, ch.text() + o.text) for o in outs]
                for o, s in zip(outs, scores):
                    self.finished.append({"text": ch.text() + o.text, "orm": s, "node": None})
                orm = sum(scores) / len(scores)
            else:
                orm = None
            ch.score = crit.score(ch.value, heads["prm"][i], orm)
            backup(ch, ch.score)

    def _result(self, root: Node, sims: int) -> SearchResult:
        nodes = _count(root)
        cands = [{"text": f["text"], "answer": extract_answer(f["text"]),
                  "score": f["node"].score if f["node"] is not None else f["orm"],
                  "in_tree": f["node"] is not None} for f in self.finished]
        best = self._choose(root, cands)  # may complete a trajectory (and charge it) when none finished
        return SearchResult(best["text"], extract_answer(best["text"]), best["score"], self.rollouts, self.tokens,
                            nodes, sims, cands)

    def _choose(self, root: Node, cands: list[dict]) -> dict:
        """The answer (Sec. 4.5): the trajectory whose leaf has the highest critic score; 'vote': the answer
        with the largest summed score over every complete trajectory found."""
        tree = [c for c in cands if c["in_tree"]] or cands
        if self.cfg.answer == "vote" and cands:
            totals: dict[str, float] = {}
            for c in cands:
                totals[c["answer"]] = totals.get(c["answer"], 0.0) + c["score"]
            top = max(totals, key=totals.get)
            return max((c for c in cands if c["answer"] == top), key=lambda c: c["score"])
        if tree:
            return max(tree, key=lambda c: c["score"])
        node = root  # nothing finished within the budget: follow the most visited path and complete it greedily
        while node.children:
            node = max(node.children, key=lambda ch: (ch.N, ch.Q))
        done = rollout(self.policy, node.state, 1, self.stepper, 0.0)[0]
        self.rollouts += n_steps(done.text)  # charged like everything else: the baselines get as many options
        self.tokens += len(done.ids)
        return {"text": node.text() + done.text, "score": node.score}


def _count(node: Node) -> int:
    return 1 + sum(_count(ch) for ch in node.children)
