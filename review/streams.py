"""A stream of the review queue: the filters and the order a reviewer works in, carried by a query string.

The queue page lists a stream, Next claims from it, and a label opens the stream's next item, so one URL such as
``/review/?tenant=acme&reason=degraded&sort=-score`` is a view that can be bookmarked, saved and shared. Every
value comes from the request: unknown values select nothing and never raise.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from datetime import timedelta
from urllib.parse import urlencode

from django.db.models import Case, F, FloatField, Q, QuerySet, TextField, Value, When
from django.db.models.functions import Cast
from django.http import QueryDict
from django.utils import timezone

from policy import verification
from review.models import ReviewItem

AGE_CHOICES = {"1h": 1, "24h": 24, "7d": 24 * 7}
# The verifier's failed-check codes (policy.verification), the taxonomy reviewers tag their labels with.
REASONS = {
    verification.D_HAT_TOLERANCE: "D̂ differs from the recomputed value",
    verification.COH_STAR_BOUNDS: "coh★ out of bounds",
    verification.REGIME_MISMATCH: "regime does not match the signals",
    verification.BUDGET_DEVIATION: "budget does not follow the formula",
    verification.DEGRADED: "marked degraded by the agent",
    verification.CONFORMAL: "conformal p-value at or under delta",
}
DECISIONS = ("escalate", "reject", "audit")  # "audit": the blind audit samples (kept for old links)
KINDS = {"audit": "audit samples (blind)", "escalation": "escalations and rejections"}
STAGES = {
    "first": "first label",
    "second": "second opinion",
    "adjudication": "adjudication",
}
SORTS = {
    "age": "oldest first",
    "-age": "newest first",
    "-score": "highest score first",
    "score": "lowest score first",
}
PREFIX_CHARS = frozenset("0123456789abcdef")


@dataclass(frozen=True)
class Stream:
    tenant: str = ""
    decision: str = ""
    regime: str = ""
    reason: str = ""
    age: str = ""
    kind: str = ""
    stage: str = ""
    q: str = ""
    sort: str = "age"

    @classmethod
    def from_query(cls, data: QueryDict | dict[str, str]) -> Stream:
        """The stream named by a query string's parameters; missing ones are "all", long ones are cut."""
        # NUL never reaches SQL (PostgreSQL refuses it in text): a stream also arrives encoded in a form field.
        values = {f.name: str(data.get(f.name, "") or "").replace("\x00", "").strip()[:128] for f in fields(cls)}
        values["q"] = values["q"].lower()
        if values["sort"] not in SORTS:
            values["sort"] = "age"
        return cls(**values)

    @classmethod
    def from_encoded(cls, text: str) -> Stream:
        return cls.from_query(QueryDict(text[:1000]))

    def query_string(self) -> str:
        """The URL query of this stream without its defaults ("" for the whole queue, oldest first)."""
        default = Stream()
        return urlencode({k: v for k, v in asdict(self).items() if v != getattr(default, k)})

    def with_sort(self, sort: str) -> Stream:
        return replace(self, sort=sort)

    @property
    def filtered(self) -> bool:
        return replace(self, sort="age") != Stream()

    @property
    def adjudication(self) -> bool:
        return self.stage == "adjudication"

    def apply(self, items: QuerySet[ReviewItem]) -> QuerySet[ReviewItem]:
        """``items`` narrowed to this stream's filters (not ordered)."""
        if self.tenant:
            items = items.filter(tenant=self.tenant)
        # Waiting audit samples are blind (ReviewItem.verdict_hidden): filters on the verdict never match them, or
        # filtering by "escalate" or by a failed check would tell which audit samples the verifier escalated.
        if self.decision == "audit":
            items = items.filter(audit_sample=True)
        elif self.decision:
            items = items.filter(decision=self.decision, audit_sample=False)
        if self.kind == "audit":
            items = items.filter(audit_sample=True)
        elif self.kind == "escalation":
            items = items.filter(audit_sample=False)
        elif self.kind:
            items = items.none()
        if self.regime:
            items = items.filter(regime=self.regime)
        if self.reason:
            if self.reason not in REASONS:
                return items.none()
            # The codes as JSON text: a quoted code matches exactly one element, on PostgreSQL and SQLite alike
            # (JSON containment, ``reasons__contains``, exists only on PostgreSQL).
            items = items.annotate(reasons_text=Cast("reasons", TextField())).filter(
                reasons_text__contains=f'"{self.reason}"', audit_sample=False
            )
        if self.age:
            if self.age not in AGE_CHOICES:
                return items.none()
            # Older than: what has waited too long first.
            items = items.filter(received_at__lte=timezone.now() - timedelta(hours=AGE_CHOICES[self.age]))
        if self.stage == "adjudication":
            items = items.filter(stage=ReviewItem.Stage.ADJUDICATION)
        elif self.stage in STAGES:
            items = items.filter(stage=self.stage)
        elif self.stage:
            items = items.none()
        if self.q:
            if not set(self.q) <= PREFIX_CHARS:
                return items.none()
            items = items.filter(pcs_id__startswith=self.q)
        return items

    def order(self, items: QuerySet[ReviewItem]) -> QuerySet[ReviewItem]:
        """``items`` in this stream's order; a blind audit sample's score is unknown, so it sorts after the rest."""
        if self.sort in ("age", "-age"):
            prefix = "-" if self.sort == "-age" else ""
            return items.order_by(f"{prefix}received_at", f"{prefix}id")
        visible = Case(
            When(audit_sample=True, stage__in=blind_stages(), then=Value(None)),
            default=F("score"),
            output_field=FloatField(),
        )
        key = F("visible_score")
        by_score = key.desc(nulls_last=True) if self.sort == "-score" else key.asc(nulls_last=True)
        return items.annotate(visible_score=visible).order_by(by_score, "received_at", "id")


def blind_stages() -> list[str]:
    return [s for s in ReviewItem.Stage.values if s != ReviewItem.Stage.DONE]


def pcs_prefix_filter(q: str, field: str = "pcs_id") -> Q | None:
    """A filter on a pcs_id prefix (hex, any length up to 64), or None when ``q`` cannot be one."""
    q = q.strip().lower()[:64]
    if not q or not set(q) <= PREFIX_CHARS:
        return None
    return Q(**{f"{field}__startswith": q})
