"""The monitors' statistics: miscoverage of benign audit labels, a conformal test martingale for drift, and
power and precision from the audit sample. Pure functions over values: no ORM, no settings.

Every figure here is computed from the **audit sample**: PCS drawn at random with a recorded inclusion
probability, whatever their verdict, and labelled blind. Labels of escalations outside the audit sample are a
selected sample (the top of the score distribution) and would bias each of these figures.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from calibration.conformal import conformal_rank

# --- Intervals ------------------------------------------------------------------------------------------


def clopper_pearson(successes: float, trials: float, confidence: float = 0.95) -> tuple[float, float]:
    """The two-sided Clopper–Pearson interval of a binomial proportion: Beta quantiles of the counts.

    ``successes`` and ``trials`` may be real numbers (an effective sample size and the matching count); the
    Beta quantiles are defined for real parameters, and with integers this is the exact interval
    (``scipy.stats.binomtest(...).proportion_ci(method="exact")``). Empty trials give (0, 1).
    """
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence!r}")
    if trials < 0 or not 0 <= successes <= trials:
        raise ValueError("need 0 <= successes <= trials")
    if trials == 0:
        return 0.0, 1.0
    from scipy import stats  # scipy.stats costs a second at import; the request path needs none of it

    tail = (1.0 - confidence) / 2.0
    low = 0.0 if successes <= 0 else float(stats.beta.ppf(tail, successes, trials - successes + 1.0))
    high = 1.0 if successes >= trials else float(stats.beta.ppf(1.0 - tail, successes + 1.0, trials - successes))
    return low, high


# --- Miscoverage ----------------------------------------------------------------------------------------


def conditional_miscoverage_beta(n: int, delta: float) -> tuple[int, int]:
    """The Beta(a, b) law of the miscoverage of one calibration set of n exchangeable continuous scores.

    With k = ceil((n+1)(1-delta)), a new benign score exceeds the k-th smallest of n scores with probability
    1 - F(s_(k)) ~ Beta(n+1-k, k) over the draw of the set (mean (n+1-k)/(n+1) <= delta). When k > n the
    threshold is infinite and nothing is flagged: a = 0 stands for the point mass at 0.
    """
    k = conformal_rank(n, delta)
    return max(0, n + 1 - k), k


def betabinomial_upper_p(flagged: int, considered: int, n: int, delta: float) -> float:
    """P(X >= flagged) when X counts flags among ``considered`` benign PCS judged by one set of n scores.

    Conditional on the set, X is binomial with the set's miscoverage, which is Beta(n+1-k, k): X is
    beta-binomial. This is the spread a correctly working tenant has; the plain binomial test ignores the
    set's own randomness and alarms far more often than its level when the audit window is large against n.
    """
    if flagged <= 0:
        return 1.0
    a, b = conditional_miscoverage_beta(n, delta)
    if a == 0:
        return 0.0  # an infinite threshold flags nothing: one flag is impossible under the model
    from scipy import stats
    from scipy.special import logsumexp

    # The upper tail summed term by term: scipy's sf is 1 - cdf in places and loses the far tail to rounding
    # (a p-value of 3e-13 that grew with one more flag); a sum of fewer positive terms never grows.
    tail = stats.betabinom.logpmf(np.arange(flagged, considered + 1), considered, a, b)
    return float(min(1.0, np.exp(logsumexp(tail))))


@dataclass(frozen=True)
class MiscoverageEstimate:
    flagged: int  # benign audit labels the conformal step flagged at ingest (p <= delta)
    considered: int  # benign audit labels judged by the conformal step (flagged not null)
    rate: float | None
    ci_low: float
    ci_high: float
    delta: float  # the largest delta seen in the window
    snapshot_n: int | None  # the smallest calibration size seen in the window
    binomial_p: float  # exact binomial test of "rate <= delta" (independent flags)
    p_value: float  # beta-binomial test against one calibration set of size snapshot_n: the alarm's p-value


def miscoverage_estimate(
    flagged: int, considered: int, *, delta: float, snapshot_n: int | None, confidence: float = 0.95
) -> MiscoverageEstimate:
    """The false-escalation rate of benign PCS from audit counts, its interval and its two tests.

    ``p_value`` is the beta-binomial tail of one calibration set of size ``snapshot_n`` at level ``delta``.
    The caller passes the smallest calibration size and the largest delta that decided the window's PCS: the
    largest delta gives the highest rate the guarantee allows, and the smallest n the widest spread of a set's
    miscoverage (Beta variance ~ delta(1-delta)/n). PCS of one window are judged by overlapping sets that share
    most of their scores, so their miscoverages are positively correlated; by Cauchy–Schwarz the variance of
    the count is at most the one of a single set of the smallest size, which is the law tested here.
    Without a known ``snapshot_n`` the binomial p-value is the one used.
    """
    if not 0 <= flagged <= considered:
        raise ValueError("need 0 <= flagged <= considered")
    rate = flagged / considered if considered else None
    low, high = clopper_pearson(flagged, considered, confidence)
    binomial_p = 1.0
    p_value = 1.0
    if considered:
        from scipy import stats

        binomial_p = float(stats.binomtest(flagged, considered, delta, alternative="greater").pvalue)
        p_value = binomial_p if snapshot_n is None else betabinomial_upper_p(flagged, considered, snapshot_n, delta)
    return MiscoverageEstimate(flagged, considered, rate, low, high, delta, snapshot_n, binomial_p, p_value)


def benjamini_hochberg(p_values: Sequence[float], level: float) -> tuple[list[bool], list[float]]:
    """Which hypotheses Benjamini–Hochberg rejects at false-discovery rate ``level``, and the adjusted p-values.

    Rejects the k smallest p-values, k the largest with p_(k) <= k·level/m. The FDR is at most level for
    independent (or positively dependent) p-values; when every hypothesis is true that is the probability of
    any rejection at all.
    """
    m = len(p_values)
    if m == 0:
        return [], []
    p = np.asarray(p_values, dtype=float)
    order = np.argsort(p, kind="stable")
    ranked = p[order] * m / np.arange(1, m + 1)
    adjusted_sorted = np.minimum(1.0, np.minimum.accumulate(ranked[::-1])[::-1])
    adjusted = np.empty(m)
    adjusted[order] = adjusted_sorted
    return [bool(q <= level) for q in adjusted], [float(q) for q in adjusted]


# --- Drift: a conformal test martingale --------------------------------------------------------------------


def smoothing_draw(tenant: str, pcs_id: str) -> float:
    """The uniform tie-breaker of one label's smoothed p-value, fixed by its name so recomputation repeats it.

    A digest is as good as a fresh uniform for this purpose (independent of the score) and lets the hourly
    task rebuild the same martingale path from the labels instead of storing the stream's state.
    """
    digest = hashlib.sha256(f"{tenant}|{pcs_id}".encode()).digest()
    return (int.from_bytes(digest[:8], "big") + 0.5) / 2.0**64


def online_conformal_p_values(scores: Sequence[float], draws: Sequence[float]) -> np.ndarray:
    """Smoothed online conformal p-values: p_i = (#{j<=i: s_j > s_i} + tau_i·#{j<=i: s_j = s_i}) / i.

    A larger score is stranger. If the scores are exchangeable and the draws tau_i independent uniforms, the
    p-values are independent and uniform on (0, 1) (Vovk, Gammerman, Shafer, *Algorithmic Learning in a
    Random World*, section 7.1). O(N log N): a Fenwick tree of counts over the ranks of the scores.
    """
    values = np.asarray(scores, dtype=float)
    if values.shape != (len(draws),):
        raise ValueError("one draw per score")
    ranks = np.unique(values, return_inverse=True)[1] + 1  # 1-based ranks for the tree
    size = int(ranks.max()) if ranks.size else 0
    tree = [0] * (size + 1)
    out = np.empty(values.size)
    for i, (rank, tau) in enumerate(zip(ranks.tolist(), draws, strict=True)):
        j = rank
        while j <= size:
            tree[j] += 1
            j += j & -j
        at_most = below = 0
        j = rank
        while j > 0:
            at_most += tree[j]
            j -= j & -j
        j = rank - 1
        while j > 0:
            below += tree[j]
            j -= j & -j
        seen = i + 1
        out[i] = (seen - at_most + tau * (at_most - below)) / seen
    return out


def simple_jumper(p_values: Sequence[float], jump: float = 0.01) -> np.ndarray:
    """Vovk's Simple Jumper conformal test martingale: its value after each p-value (it starts at 1).

    Capital is spread over three betting functions f_e(p) = 1 + e(p - 1/2), e in {-1, 0, 1}; before each
    p-value a share ``jump`` of the total capital is redistributed evenly among them, so the martingale can
    follow a change whenever it happens (Vovk, Petej, Nouretdinov, Ahlberg, Carlsson, Gammerman, "Retrain
    or not retrain: conformal test martingales for change-point detection", 2021, Algorithm 1). e = -1 wins
    on small p-values (new scores larger than the past ones), e = 1 on large ones. Each f_e integrates to 1
    over (0, 1), so on uniform p-values the value is a non-negative martingale of mean 1 and by Ville's
    inequality P(sup_t M_t >= 1/level) <= level over the whole stream, however long it runs.
    """
    if not 0.0 <= jump <= 1.0:
        raise ValueError("jump must be within [0, 1]")
    # The split of capital among e = -1, 0, 1 is kept normalised and the total as a logarithm: a long shifted
    # stream takes the total past the range of a float, the split never.
    split = [1.0 / 3.0, 1.0 / 3.0, 1.0 / 3.0]
    log_total = 0.0
    out = np.empty(len(p_values))
    for i, p in enumerate(p_values):
        bet = float(p) - 0.5
        mixed = [(1.0 - jump) * s + jump / 3.0 for s in split]
        grown = [mixed[0] * (1.0 - bet), mixed[1], mixed[2] * (1.0 + bet)]
        factor = grown[0] + grown[1] + grown[2]
        log_total += math.log(factor)
        split = [g / factor for g in grown]
        out[i] = math.exp(min(log_total, 700.0))
    return out


@dataclass(frozen=True)
class DriftPath:
    values: np.ndarray  # the martingale after each label
    running_max: float  # its largest value so far (1 before any label)
    alarm_index: int | None  # the first label at which it reached 1/level, if any

    @property
    def p_value(self) -> float:
        """1 / sup M: an anytime-valid p-value (Ville), at most level exactly when the alarm fired."""
        return min(1.0, 1.0 / self.running_max)


def drift_path(scores: Sequence[float], draws: Sequence[float], *, level: float, jump: float = 0.01) -> DriftPath:
    """The Simple Jumper over the online conformal p-values of a stream of benign scores, and its first alarm.

    The alarm fires when the martingale reaches 1/level. On an exchangeable stream (stationary benign traffic)
    that happens with probability at most ``level`` over the whole stream, so hourly looks at a growing
    stream need no multiplicity correction; a shift of the benign score distribution makes the new p-values
    pile up at one end and the martingale grow geometrically.
    """
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1), got {level!r}")
    values = simple_jumper(online_conformal_p_values(scores, draws), jump)
    crossed = np.flatnonzero(values >= 1.0 / level)
    running_max = max(1.0, float(values.max())) if values.size else 1.0
    return DriftPath(values, running_max, int(crossed[0]) if crossed.size else None)


# --- Power and precision ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class WeightedShare:
    estimate: float | None  # Horvitz–Thompson ratio: sum of weights with the property / sum of weights
    ci_low: float
    ci_high: float
    labels: int  # labels behind it
    effective_n: float  # Kish: (sum w)^2 / sum w^2


def weighted_share(hits: Sequence[bool], weights: Sequence[float], confidence: float = 0.95) -> WeightedShare:
    """The share of a population with a property, from a sample drawn with known inclusion probabilities.

    Each label weighs 1/inclusion probability (Horvitz–Thompson); the share is the ratio of weighted sums.
    Its interval is Clopper–Pearson on Kish's effective sample size n_eff = (sum w)^2 / sum w^2 with
    n_eff·estimate successes: exact for equal weights, an approximation otherwise (weights that vary, as the
    bootstrap audit share makes them, shrink n_eff and widen the interval).
    """
    w = np.asarray(weights, dtype=float)
    hit = np.asarray(hits, dtype=bool)
    if w.shape != hit.shape:
        raise ValueError("one weight per label")
    if (w <= 0).any():
        raise ValueError("weights must be positive")
    if w.size == 0:
        return WeightedShare(None, 0.0, 1.0, 0, 0.0)
    total = float(w.sum())
    estimate = float(w[hit].sum()) / total
    effective_n = total * total / float((w * w).sum())
    low, high = clopper_pearson(estimate * effective_n, effective_n, confidence)
    return WeightedShare(estimate, low, high, int(w.size), effective_n)


@dataclass(frozen=True)
class AuditOutcome:
    """One audit label as the power and precision estimates see it."""

    anomalous: bool
    accepted: bool
    inclusion_probability: float


@dataclass(frozen=True)
class Performance:
    power: WeightedShare  # share of anomalous PCS not accepted
    precision: WeightedShare  # share of not-accepted PCS that are anomalous


def performance(outcomes: Sequence[AuditOutcome], confidence: float = 0.95) -> Performance:
    """Power and precision of the verdicts from audit labels, each weighted by 1/inclusion probability.

    Power counts every verdict other than accept (escalate or reject, for failed checks or for the conformal
    step) as catching an anomaly: it is what a reviewer or the agent sees. It is measured, never guaranteed.
    """
    anomalous = [o for o in outcomes if o.anomalous]
    stopped = [o for o in outcomes if not o.accepted]
    return Performance(
        power=weighted_share(
            [not o.accepted for o in anomalous], [1.0 / o.inclusion_probability for o in anomalous], confidence
        ),
        precision=weighted_share(
            [o.anomalous for o in stopped], [1.0 / o.inclusion_probability for o in stopped], confidence
        ),
    )
