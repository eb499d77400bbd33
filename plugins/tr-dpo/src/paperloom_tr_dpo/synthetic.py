"""A synthetic alignment task with a hidden gold reward (the demo's stand-in for human preferences).

A prompt asks about a topic (``tell me about fruits:``); a response is a short list of words. The hidden
gold reward counts the words on the prompt's topic and penalises repeats:

    r(x, y) = #{on-topic words in y} - 0.5 * #{repeated words in y} - 0.5 * [y has no words]

The SFT ("base") distribution picks every word uniformly from all topics, so it scores ~1.5 on average;
a policy that learns the preferences moves towards on-topic, non-repeating lists. Preferences between two
responses are drawn from the Bradley-Terry model P(y1 > y2) = sigmoid(r1 - r2).
"""

from __future__ import annotations

import math
import random

TOPICS = {
    "animals": "cat dog cow fox owl bee ant elk".split(),
    "colors": "red blue green pink gray gold teal tan".split(),
    "fruits": "apple pear plum fig lime kiwi date mango".split(),
    "tools": "saw drill nail hammer axe file rake hoe".split(),
}
WORDS = [w for ws in TOPICS.values() for w in ws]
TOPIC_OF = {w: t for t, ws in TOPICS.items() for w in ws}
RESPONSE_WORDS = 6  # words per base response


def make_prompt(topic: str) -> str:
    return f"tell me about {topic}:"


def topic_of_prompt(prompt: str) -> str | None:
    words = prompt.strip().rstrip(":").split()
    return words[-1] if words and words[-1] in TOPICS else None


def gold_reward(prompt: str, response: str) -> float:
    """The hidden reward r(x, y) above (the EOS marker and punctuation are ignored)."""
    topic = topic_of_prompt(prompt)
    words = [w.strip(".,:;") for w in response.replace("<|endoftext|>", " ").split()]
    words = [w for w in words if w]
    on_topic = sum(1 for w in words if TOPIC_OF.get(w) == topic)
    repeats = len(words) - len(set(words))
    return float(on_topic - 0.5 * repeats - (0.5 if not words else 0.0))


def base_response(rng: random.Random, n_words: int = RESPONSE_WORDS) -> str:
    """A base-distribution sample: uniform words from every topic (leading space: trl joins with no separator)."""
    return " " + " ".join(rng.choice(WORDS) for _ in range(n_words))


def prompts(n: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    topics = sorted(TOPICS)
    return [make_prompt(rng.choice(topics)) for _ in range(n)]


def bradley_terry(r1: float, r2: float, rng: random.Random, scale: float = 1.0) -> bool:
    """True when response 1 is preferred, drawn with probability sigmoid(scale * (r1 - r2))."""
    return rng.random() < 1.0 / (1.0 + math.exp(-scale * (r1 - r2)))


def label_pairs(prompt_list: list[str], first: list[str], second: list[str], seed: int = 0,
                scale: float = 1.0) -> list[dict]:
    """(prompt, chosen, rejected) rows from two responses per prompt, labelled by Bradley-Terry on the gold reward."""
    rng = random.Random(seed)
    rows = []
    for p, a, b in zip(prompt_list, first, second):
        ra, rb = gold_reward(p, a), gold_reward(p, b)
        chosen, rejected = (a, b) if bradley_terry(ra, rb, rng, scale) else (b, a)
        rows.append({"prompt": p, "chosen": chosen, "rejected": rejected})
    return rows


def synthetic_pairs(n: int, seed: int = 0) -> list[dict]:
    """Off-policy pairs: two base responses per prompt, labelled by the gold reward."""
    rng = random.Random(seed + 1)
    ps = prompts(n, seed)
    return label_pairs(ps, [base_response(rng) for _ in ps], [base_response(rng) for _ in ps], seed + 2)


def corpus(n: int = 2000, seed: int = 0) -> list[str]:
    """Text to train the demo tokenizer on: every prompt form and many responses."""
    rng = random.Random(seed)
    texts = [make_prompt(t) for t in TOPICS] + [" ".join(WORDS)]
    texts += [make_prompt(rng.choice(sorted(TOPICS))) + base_response(rng) for _ in range(n)]
    return texts
