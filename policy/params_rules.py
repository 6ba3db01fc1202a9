"""The invariants of a VerifyParams version and what makes a change widen acceptance: pure functions of values.

One place for the rules, used by the model's ``clean()`` (and so the admin form), the policy DSL and the
tests. A wrong parameter silently widens what is accepted, so every rule names the field it guards.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from calibration.scoring import SCORE_KINDS

# The fields an admin tunes, in the order the admin and the diff show them.
PARAM_FIELDS: tuple[str, ...] = (
    "tol_d", "tol_coh", "budget_tol",
    "base", "alpha", "beta", "gamma", "d0",
    "sticky_coh_min", "sticky_d_max", "non_sticky_d_min",
    "w_d", "w_coh", "w_r", "r0", "score_kind", "delta", "reject_delta", "n_min", "audit_rate", "bootstrap_audit_rate",
    "dedup_ttl_days",
)  # fmt: skip

# The fields that are names, not numbers.
TEXT_FIELDS = frozenset({"score_kind"})

# ε of "0 ≤ coh bound ≤ 1 + ε": coh★ is a share in [0, 1]; tolCoh allows at most this much measurement slack.
COH_EPSILON = 0.10

# Raising a tolerance, lowering delta or raising n_min (a tenant under n_min has no conformal step) lets more PCS
# be accepted: such changes need confirmation. reject_delta only moves PCS between "escalate" and "reject", both
# refusals, so no change of it widens acceptance.
WIDENS_WHEN_RAISED = ("tol_d", "tol_coh", "budget_tol", "n_min")
WIDENS_WHEN_LOWERED = ("delta",)


def invariant_errors(values: Mapping[str, float]) -> dict[str, list[str]]:
    """Return ``{field: [message, ...]}`` for every invariant ``values`` break; empty when all hold.

    Invariants:
    - tolerances (tolD, tolCoh, budget tolerance) are positive;
    - the coh★ bound 1 + tolCoh and the sticky coh★ threshold lie within [0, 1 + ε], ε = ``COH_EPSILON``;
    - weights (base, alpha, beta, gamma, w_d, w_coh, w_r, the audit shares) lie in [0, 1], and the share until
      n_min is at least the audit share;
    - delta and reject_delta lie in (0, 1) and reject_delta < delta;
    - the budget formula stays within [0, 1] for every r in [0, 1] and coh★ in [0, 1 + tolCoh]: with
      non-negative weights its smallest value is ``base`` and, before the D̂ term, its largest is
      ``base + alpha + gamma·(1 + tolCoh)``, which must not exceed 1. The D̂ term ``beta·max(0, D̂ − D0)``
      is unbounded in D̂ by design (a runaway dimension saturates the budget at 1 by clamping), so D0 ≥ 0
      is all that is asked of it;
    - every value is a finite number;
    - sticky D̂ max < non-sticky D̂ min (otherwise the regimes overlap), r0 > 0, n_min ≥ 1, TTL ≥ 1 day.
    Missing values are reported on their field rather than raising.
    """
    errors: dict[str, list[str]] = {}

    def add(name: str, message: str) -> None:
        errors.setdefault(name, []).append(message)

    v: dict[str, float] = {}
    if values.get("score_kind", "reference") not in SCORE_KINDS:  # values from before score kinds: reference
        add("score_kind", f"must be one of {', '.join(SCORE_KINDS)}")
    for name in PARAM_FIELDS:
        if name in TEXT_FIELDS:
            continue
        raw = values.get(name)
        if raw is None:
            add(name, "is required")
        else:
            try:
                v[name] = float(raw)
            except (TypeError, ValueError, OverflowError):
                add(name, "must be a number")
                continue
            if not math.isfinite(v[name]):  # e.g. 1e999 in a policy: an infinite tolerance would switch a check off
                add(name, "must be a finite number")
    if errors:
        return errors

    for name in ("tol_d", "tol_coh", "budget_tol"):
        if not v[name] > 0:
            add(name, "a tolerance must be positive")
    if v["tol_coh"] > COH_EPSILON:
        add("tol_coh", f"the coh★ bound 1 + tolCoh must stay within [0, {1 + COH_EPSILON:g}]: tolCoh ≤ {COH_EPSILON:g}")
    for name in ("base", "alpha", "beta", "gamma", "w_d", "w_coh", "w_r", "audit_rate", "bootstrap_audit_rate"):
        if not 0.0 <= v[name] <= 1.0:
            add(name, "must be within [0, 1]")
    if (
        "audit_rate" not in errors
        and "bootstrap_audit_rate" not in errors
        and v["bootstrap_audit_rate"] < v["audit_rate"]
    ):
        add("bootstrap_audit_rate", "must be at least the audit share (it speeds up the first n_min labels)")
    coh_max = 1.0 + max(0.0, v["tol_coh"])
    if not 0.0 <= v["sticky_coh_min"] <= coh_max:
        add("sticky_coh_min", f"a coh★ bound must be within [0, {coh_max:g}]")
    for name in ("delta", "reject_delta"):
        if not 0.0 < v[name] < 1.0:
            add(name, "must be within (0, 1)")
    if "delta" not in errors and "reject_delta" not in errors and not v["reject_delta"] < v["delta"]:
        add("reject_delta", "must be smaller than delta (rejection is the stricter level)")
    weights_ok = not {"base", "alpha", "gamma"} & errors.keys()
    if weights_ok:
        top = v["base"] + v["alpha"] + v["gamma"] * coh_max
        if top > 1.0 + 1e-12:
            add(
                "base",
                f"the budget formula reaches {top:.4g} > 1 (base + alpha + gamma·(1 + tolCoh)); lower base, alpha or gamma",
            )
    if v["d0"] < 0:
        add("d0", "must be at least 0")
    if not v["sticky_d_max"] < v["non_sticky_d_min"]:
        add("non_sticky_d_min", "must be larger than the sticky D̂ maximum, or the regimes overlap")
    if not v["r0"] > 0:
        add("r0", "must be positive")
    if v["n_min"] < 1 or v["n_min"] != int(v["n_min"]):
        add("n_min", "must be a whole number of at least 1")
    if v["dedup_ttl_days"] < 1 or v["dedup_ttl_days"] != int(v["dedup_ttl_days"]):
        add("dedup_ttl_days", "must be a whole number of days, at least 1")
    return errors


def changed_fields(old: Mapping[str, float], new: Mapping[str, float]) -> list[str]:
    """The tuned fields whose value differs between two versions, in ``PARAM_FIELDS`` order."""
    return [name for name in PARAM_FIELDS if old.get(name) != new.get(name)]


def widened_fields(old: Mapping[str, float], new: Mapping[str, float]) -> list[str]:
    """The fields whose change from ``old`` to ``new`` lets more PCS be accepted."""
    raised = [n for n in WIDENS_WHEN_RAISED if float(new[n]) > float(old[n])]
    lowered = [n for n in WIDENS_WHEN_LOWERED if float(new[n]) < float(old[n])]
    return raised + lowered
