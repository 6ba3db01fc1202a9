"""A labelled corpus of LLM-style texts the project generates itself: normal answers and four degeneracies.

Every text is built from a seeded generator (same seed, same corpus), so the detection benchmark needs no
download. Normal texts are answers on one topic, sentence after sentence from varied templates. The degenerate
kinds are what goes wrong in generated text:

- ``loop``: a clause of 5 to 14 words over and over, after at most five fluent words (a decoding loop);
- ``repetition``: a short phrase of one to four words repeated (a stuck token or n-gram);
- ``drift``: every sentence or two on another topic, each sentence fluent on its own;
- ``incoherence``: words of every topic in random order, with punctuation in random places.

Lengths are drawn from one range for every kind (the same target number of words), so the token count
alone cannot separate them. The degenerate kinds start early (within the first sentence or two), which is
what makes them visible in a 32-token window at all; a loop after 200 fluent words is not in its first 32
tokens, and no signal of those tokens can see it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

KINDS = ("loop", "repetition", "drift", "incoherence")

# fmt: off
TOPICS: dict[str, dict[str, list[str]]] = {
    "databases": {
        "nouns": ["index", "query planner", "transaction", "table", "replica", "write-ahead log", "primary key",
                  "join", "isolation level", "vacuum", "connection pool", "schema migration"],
        "verbs": ["locks", "scans", "commits", "replicates", "rewrites", "caches", "partitions", "validates"],
        "adjs": ["consistent", "durable", "slow", "indexed", "concurrent", "stale", "normalised"],
    },
    "cooking": {
        "nouns": ["sauce", "onion", "oven", "dough", "broth", "skillet", "garlic", "recipe", "butter", "risotto",
                  "marinade", "pastry"],
        "verbs": ["simmers", "browns", "thickens", "rests", "seasons", "caramelises", "bakes", "reduces"],
        "adjs": ["crisp", "tender", "golden", "savoury", "fresh", "rich", "smoky"],
    },
    "astronomy": {
        "nouns": ["galaxy", "telescope", "orbit", "nebula", "comet", "red giant", "exoplanet", "spectrum",
                  "black hole", "solar wind", "light curve", "star cluster"],
        "verbs": ["emits", "orbits", "collapses", "reflects", "expands", "absorbs", "rotates", "eclipses"],
        "adjs": ["distant", "faint", "massive", "luminous", "cold", "ancient", "dense"],
    },
    "gardening": {
        "nouns": ["tomato plant", "compost", "soil", "seedling", "root", "greenhouse", "mulch", "rose bush",
                  "watering can", "raised bed", "cutting", "pest"],
        "verbs": ["grows", "blooms", "wilts", "spreads", "drains", "sprouts", "shades", "feeds"],
        "adjs": ["moist", "sunny", "acidic", "healthy", "shaded", "fertile", "young"],
    },
    "finance": {
        "nouns": ["interest rate", "bond", "portfolio", "dividend", "inflation", "loan", "budget", "index fund",
                  "tax return", "mortgage", "cash flow", "balance sheet"],
        "verbs": ["rises", "compounds", "matures", "diversifies", "falls", "yields", "hedges", "accrues"],
        "adjs": ["volatile", "fixed", "taxable", "liquid", "annual", "risky", "stable"],
    },
    "music": {
        "nouns": ["chord", "melody", "rhythm", "orchestra", "guitar", "tempo", "harmony", "scale", "drummer",
                  "symphony", "verse", "bass line"],
        "verbs": ["resolves", "modulates", "swings", "echoes", "builds", "repeats", "accents", "fades"],
        "adjs": ["minor", "syncopated", "loud", "gentle", "dissonant", "bright", "steady"],
    },
    "medicine": {
        "nouns": ["vaccine", "symptom", "dosage", "antibody", "clinical trial", "patient", "blood pressure",
                  "diagnosis", "infection", "side effect", "immune response", "prescription"],
        "verbs": ["reduces", "triggers", "treats", "spreads", "prevents", "signals", "relieves", "monitors"],
        "adjs": ["chronic", "mild", "acute", "effective", "viral", "routine", "rare"],
    },
    "travel": {
        "nouns": ["train", "passport", "itinerary", "hostel", "airport", "museum", "ferry", "border crossing",
                  "guidebook", "old town", "night bus", "booking"],
        "verbs": ["departs", "arrives", "connects", "crosses", "stops", "opens", "costs", "fills"],
        "adjs": ["crowded", "cheap", "scenic", "late", "quiet", "historic", "remote"],
    },
}

OPENERS = ["In short,", "In practice,", "First,", "Second,", "Then", "However,", "For example,", "Usually",
           "As a rule,", "Note that", "On the other hand,", "Finally,", "Most of the time", "In my experience,"]
TEMPLATES = [
    "{op} the {adj} {n1} {v1} when the {n2} {v2}.",
    "{op} a {n1} {v1} faster if the {n2} is {adj}.",
    "The {n1} {v1} because the {adj} {n2} {v2} first.",
    "{op} you should check whether the {n1} {v1} before the {n2} {v2}.",
    "A {adj} {n1} often {v1}, while the {n2} {v2} more slowly.",
    "{op} it helps to keep the {n1} {adj}, so the {n2} {v2} as expected.",
    "If the {n1} {v1} too early, the {n2} {v2} and nothing stays {adj}.",
    "The main question is how the {n1} {v1} once the {n2} becomes {adj}.",
    "{op} most people forget that the {n2} {v2} when the {n1} is {adj}.",
    "Compare the {adj} {n1} with the {n2}: one {v1}, the other {v2}.",
]
# fmt: on
FUNCTION_WORDS = ["the", "a", "of", "and", "to", "is", "in", "that", "it", "with", "as", "for", "on", "but"]


@dataclass(frozen=True)
class Text:
    kind: str  # "normal" or one of KINDS
    text: str
    topic: str


def _sentence(rng: np.random.Generator, topic: str) -> str:
    words = TOPICS[topic]
    n1, n2 = rng.choice(words["nouns"], 2, replace=False)
    v1, v2 = rng.choice(words["verbs"], 2, replace=False)
    sentence = str(rng.choice(TEMPLATES)).format(
        op=rng.choice(OPENERS), n1=n1, n2=n2, v1=v1, v2=v2, adj=rng.choice(words["adjs"])
    )
    return sentence[0].upper() + sentence[1:]


def _grow(sentences: list[str], produce: Callable[[], str], target_words: int) -> str:
    while sum(len(s.split()) for s in sentences) < target_words:
        sentences.append(produce())
    return " ".join(sentences)


def _cut(text: str, target_words: int) -> str:
    return " ".join(text.split()[:target_words])


def generate(kind: str, rng: np.random.Generator, target_words: int) -> Text:
    """One text of ``kind`` with about ``target_words`` words."""
    topic = str(rng.choice(list(TOPICS)))
    if kind == "normal":
        return Text(kind, _cut(_grow([], lambda: _sentence(rng, topic), target_words), target_words), topic)
    if kind == "loop":
        # A clause of 5 to 14 words that comes back again and again, after at most a few fluent words.
        prefix = " ".join(_sentence(rng, topic).split()[: int(rng.integers(0, 6))])
        clause = " ".join(" ".join(_sentence(rng, topic) for _ in range(2)).split()[: int(rng.integers(5, 15))])
        body = " ".join([clause] * (target_words // len(clause.split()) + 1))
        return Text(kind, _cut(f"{prefix} {body}".strip(), target_words), topic)
    if kind == "repetition":
        words = TOPICS[topic]
        pool = words["nouns"] + words["verbs"] + words["adjs"] + FUNCTION_WORDS
        phrase = " ".join(rng.choice(pool, int(rng.integers(1, 5))))
        prefix = " ".join(_sentence(rng, topic).split()[: int(rng.integers(0, 10))])
        body = " ".join([phrase] * (target_words // max(1, len(phrase.split())) + 1))
        return Text(kind, _cut(f"{prefix} {body}".strip(), target_words), topic)
    if kind == "drift":
        topics = list(TOPICS)

        def drifting() -> str:
            return _sentence(rng, str(rng.choice(topics)))

        return Text(kind, _cut(_grow([], drifting, target_words), target_words), "several")
    if kind == "incoherence":
        pool = [w for t in TOPICS.values() for group in t.values() for w in group] + FUNCTION_WORDS + OPENERS
        words = []
        while len(words) < target_words:
            word = str(rng.choice(pool))
            if rng.random() < 0.08:
                word += str(rng.choice([".", ",", ";", ":"]))
            words.append(word)
        return Text(kind, " ".join(words[:target_words]).capitalize(), "several")
    raise ValueError(f"unknown kind {kind!r}: normal or one of {', '.join(KINDS)}")


def corpus(n_normal: int, n_per_kind: int, seed: int = 20, words: tuple[int, int] = (25, 160)) -> list[Text]:
    """``n_normal`` normal texts and ``n_per_kind`` of each degenerate kind, lengths uniform in ``words``."""
    rng = np.random.default_rng(seed)
    texts = [generate("normal", rng, int(rng.integers(*words))) for _ in range(n_normal)]
    for kind in KINDS:
        texts += [generate(kind, rng, int(rng.integers(*words))) for _ in range(n_per_kind)]
    return texts
