"""Agreement between two reviewers labelling the same items (Cohen's kappa)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence


def cohens_kappa(pairs: Sequence[tuple[str, str]]) -> float | None:
    """Cohen's kappa of paired labels ``[(first, second), ...]``: (p_o - p_e) / (1 - p_e).

    p_o is the share of pairs that agree; p_e the agreement expected by chance from each rater's marginal
    label frequencies. Returns None with no pairs. When chance agreement is 1 (both raters always used
    one and the same label) kappa is undefined; 1.0 is returned since they agreed on every item.
    """
    n = len(pairs)
    if n == 0:
        return None
    observed = sum(1 for a, b in pairs if a == b) / n
    first = Counter(a for a, _ in pairs)
    second = Counter(b for _, b in pairs)
    expected = sum(first[c] * second[c] for c in first.keys() | second.keys()) / (n * n)
    if expected >= 1.0:
        return 1.0
    return (observed - expected) / (1.0 - expected)
