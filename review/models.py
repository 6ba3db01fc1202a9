"""The review queue: items waiting for a human label, the labels, reviewer scopes and the audit trail."""

from __future__ import annotations

from django.conf import settings
from django.db import models

REVIEWERS_GROUP = "reviewers"


class ReviewItem(models.Model):
    """One stored PCS that needs a label: an escalation, a rejection or an audit sample.

    ``stage`` moves first -> second (while it needs more independent, blind labels: ``labels_needed``) -> done;
    labels that disagree send it to adjudication instead, and the adjudicator's label settles it (done). A claim
    is the pair (claimed_by, claimed_at); it lapses after FLK_REVIEW_CLAIM_SECONDS without being cleared.
    """

    class Stage(models.TextChoices):
        FIRST = "first", "waiting for a label"
        SECOND = "second", "waiting for a second opinion"
        ADJUDICATION = "adjudication", "waiting for adjudication"
        DONE = "done", "labelled"

    record = models.OneToOneField("ingest.PcsRecord", on_delete=models.CASCADE, related_name="review_item")
    tenant = models.CharField(max_length=64)
    pcs_id = models.CharField(max_length=64)
    shard_id = models.CharField(max_length=128)
    decision = models.CharField(max_length=16)
    regime = models.CharField(max_length=16)
    reasons = models.JSONField(default=list, blank=True, help_text="Codes of the failed checks.")
    score = models.FloatField(null=True, blank=True)
    audit_sample = models.BooleanField(default=False)
    received_at = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)
    stage = models.CharField(max_length=16, choices=Stage.choices, default=Stage.FIRST)
    labels_needed = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text="Independent labels this item needs; drawn when its first label is given."
    )
    claimed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    claimed_at = models.DateTimeField(null=True, blank=True)
    disagreement = models.BooleanField(default=False, help_text="Its independent labels differ from each other.")

    class Meta:
        ordering = ["received_at", "id"]
        permissions = [("adjudicate_reviewitem", "Can adjudicate items whose reviewers disagree")]
        indexes = [
            models.Index(fields=["stage", "received_at", "id"], name="review_queue_order"),
            models.Index(fields=["tenant", "shard_id"], name="review_tenant_shard"),
        ]

    def __str__(self) -> str:
        return f"{self.tenant}:{self.pcs_id[:12]} ({self.decision}, {self.stage})"

    @property
    def provenance(self) -> str:
        return "audit" if self.audit_sample else "escalation"

    @property
    def verdict_hidden(self) -> bool:
        """An audit sample is labelled blind: its decision, score, p-value and failed checks stay hidden until done.

        A reviewer who sees that the verifier accepted (or escalated) a PCS leans towards that verdict, and the
        audit labels are what calibrates the verifier: a label that echoes the verdict would bias the calibration
        set towards it. Second opinions are blind too, so the item shows its verdict once it is labelled.
        """
        return self.audit_sample and self.stage != self.Stage.DONE


class ReviewLabel(models.Model):
    """One reviewer's label of one item; an undo marks it withdrawn (rows are never deleted).

    The first label of an item has ``second_opinion`` False; the further independent (blind) labels True; the
    adjudicator's label of a disputed item has ``adjudication`` True and is the item's final label.
    """

    class Value(models.TextChoices):
        BENIGN = "benign"
        ANOMALOUS = "anomalous"

    item = models.ForeignKey(ReviewItem, on_delete=models.CASCADE, related_name="labels")
    reviewer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    label = models.CharField(max_length=16, choices=Value.choices)
    note = models.TextField(blank=True)
    second_opinion = models.BooleanField(default=False)
    adjudication = models.BooleanField(default=False, help_text="The final label of an item whose reviewers disagreed.")
    tags = models.JSONField(default=list, blank=True, help_text="Why: reason codes of the verifier and free tags.")
    seconds = models.FloatField(null=True, blank=True, help_text="From the reviewer's claim of the item to this label.")
    created_at = models.DateTimeField(auto_now_add=True)
    withdrawn_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            # Two submits of the same form, or two reviewers at once, cannot both count: one standing first
            # label, one standing label per reviewer, one standing adjudication per item.
            models.UniqueConstraint(
                fields=["item"],
                condition=models.Q(withdrawn_at__isnull=True, second_opinion=False, adjudication=False),
                name="review_one_standing_first_label",
            ),
            models.UniqueConstraint(
                fields=["item", "reviewer"],
                condition=models.Q(withdrawn_at__isnull=True, adjudication=False),
                name="review_one_standing_label_per_reviewer",
            ),
            models.UniqueConstraint(
                fields=["item"],
                condition=models.Q(withdrawn_at__isnull=True, adjudication=True),
                name="review_one_standing_adjudication",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.label} by {self.reviewer} on {self.item}"


class ReviewerTenant(models.Model):
    """A tenant a reviewer may see. A reviewer with no rows sees every tenant."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="review_tenants")
    tenant = models.CharField(max_length=64)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "tenant"], name="review_tenant_unique_per_user")]

    def __str__(self) -> str:
        return f"{self.user} → {self.tenant}"


class AuditEvent(models.Model):
    """Append-only trail of what reviewers and admins did; never edited or deleted from the application.

    An event names its PCS (tenant, pcs_id) as well as its item: when the dedup-TTL purge removes a labelled or
    expired PCS, its review item goes with it and the event outlives both (``item`` becomes empty).
    """

    class Action(models.TextChoices):
        CLAIM = "claim"
        LABEL = "label"
        UNDO = "undo"
        SKIP = "skip"
        EXPIRE = "expire", "expire (an audit sample given up without a label)"
        RELEASE = "release", "release (a claim given up for another item)"

    item = models.ForeignKey(ReviewItem, null=True, on_delete=models.SET_NULL, related_name="events")
    tenant = models.CharField(max_length=64, blank=True)
    pcs_id = models.CharField(max_length=64, blank=True)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    action = models.CharField(max_length=8, choices=Action.choices)
    detail = models.CharField(max_length=200, blank=True)
    at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [
            # Claiming skips the items a reviewer skipped: one index probe per candidate item.
            models.Index(fields=["item", "user"], condition=models.Q(action="skip"), name="review_audit_skips"),
        ]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.user} {self.action} {self.tenant}:{self.pcs_id[:12]}"

    def save(self, *args, **kwargs):
        if self.pk is not None:
            raise ValueError("audit events are append-only")
        if self.item is not None:
            self.tenant, self.pcs_id = self.item.tenant, self.item.pcs_id
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise ValueError("audit events are append-only")


class SavedView(models.Model):
    """A reviewer's named queue filter: the query string of the queue page, shown as a link to open or share."""

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="review_views")
    name = models.CharField(max_length=80)
    query = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["owner", "name"], name="review_view_name_unique_per_owner")]

    def __str__(self) -> str:
        return f"{self.owner}: {self.name}"
