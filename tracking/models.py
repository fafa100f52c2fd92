"""Parcels, their declared contents, their UPU events, customs cases (and their history) and
bulk event batches.

A parcel's `status` is a cache of `tracking.status.derive(...)` over its events: only the
event-ingest service writes it, so it never disagrees with the timeline.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.database import Base, append_only, utcnow


class Service(enum.StrEnum):
    PARCEL = "parcel"
    EMS = "ems"
    REGISTERED = "registered"
    ECOMMERCE = "ecommerce"


# S10 service indicators: C = parcel post, E = EMS, R = registered, H = e-commerce parcels.
SERVICE_INDICATORS: dict[Service, str] = {
    Service.PARCEL: "CP",
    Service.EMS: "EE",
    Service.REGISTERED: "RR",
    Service.ECOMMERCE: "HA",
}


class Direction(enum.StrEnum):
    DOMESTIC = "domestic"
    INBOUND = "inbound"  # international, arriving in Iraq (goes through customs)
    OUTBOUND = "outbound"


class Parcel(Base):
    __tablename__ = "parcels"
    __table_args__ = (Index("ix_parcels_open_activity", "closed", "last_activity_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    tracking_number: Mapped[str] = mapped_column(String(13), unique=True)
    service: Mapped[str] = mapped_column(String(16))
    direction: Mapped[str] = mapped_column(String(16), default=Direction.DOMESTIC)

    status: Mapped[str] = mapped_column(String(24), default="pending", index=True)
    closed: Mapped[bool] = mapped_column(default=False)
    failed_attempts: Mapped[int] = mapped_column(default=0)
    last_event_at: Mapped[datetime | None]  # when the latest event happened
    # When the latest event was recorded here, or the parcel created: the stale sweep
    # measures silence from this.
    last_activity_at: Mapped[datetime] = mapped_column(default=utcnow)
    delayed_at: Mapped[datetime | None]

    sender_name: Mapped[str] = mapped_column(String(200))
    sender_phone: Mapped[str] = mapped_column(String(32), default="")
    sender_email: Mapped[str | None] = mapped_column(String(254))
    sender_country: Mapped[str] = mapped_column(String(2), default="IQ")
    sender_governorate: Mapped[str | None] = mapped_column(String(8))
    sender_district: Mapped[str] = mapped_column(String(120), default="")
    sender_landmark: Mapped[str] = mapped_column(String(200), default="")
    sender_address: Mapped[str] = mapped_column(String(300), default="")  # abroad

    recipient_name: Mapped[str] = mapped_column(String(200))
    recipient_phone: Mapped[str] = mapped_column(String(32), default="")
    recipient_email: Mapped[str | None] = mapped_column(String(254))
    recipient_country: Mapped[str] = mapped_column(String(2), default="IQ")
    recipient_governorate: Mapped[str | None] = mapped_column(String(8))
    recipient_district: Mapped[str] = mapped_column(String(120), default="")
    recipient_landmark: Mapped[str] = mapped_column(String(200), default="")
    recipient_address: Mapped[str] = mapped_column(String(300), default="")

    origin_office_id: Mapped[int | None] = mapped_column(ForeignKey("post_offices.id"))
    pickup_office_id: Mapped[int | None] = mapped_column(ForeignKey("post_offices.id"))

    weight_grams: Mapped[int]
    length_cm: Mapped[int] = mapped_column(default=0)
    width_cm: Mapped[int] = mapped_column(default=0)
    height_cm: Mapped[int] = mapped_column(default=0)

    postage_amount: Mapped[int] = mapped_column(default=0)
    postage_currency: Mapped[str] = mapped_column(String(3), default="IQD")
    payment_id: Mapped[str | None] = mapped_column(String(64))
    payment_method: Mapped[str | None] = mapped_column(String(16))

    # Where the parcel came from in the shop ("order:42", "consignment:7"): opaque here.
    order_ref: Mapped[str | None] = mapped_column(String(64), index=True)

    # Customs declaration (CN22/CN23) facts beyond the articles.
    customs_category: Mapped[str | None] = mapped_column(String(24))
    importer_reference: Mapped[str] = mapped_column(String(64), default="")
    invoice_number: Mapped[str] = mapped_column(String(64), default="")
    licence_number: Mapped[str] = mapped_column(String(64), default="")
    certificate_number: Mapped[str] = mapped_column(String(64), default="")
    # Duty and customs fees already paid for this parcel before it arrived (a buy-for-me
    # quote): customs credits them against what it assesses (whole dinars).
    customs_prepaid_duty_iqd: Mapped[int] = mapped_column(default=0)
    customs_prepaid_fees_iqd: Mapped[int] = mapped_column(default=0)

    accepted_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    # The counter form's one-time key: submitting the same form twice makes one parcel.
    acceptance_key: Mapped[str | None] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    articles: Mapped[list[ParcelArticle]] = relationship(
        back_populates="parcel", cascade="all, delete-orphan", order_by="ParcelArticle.position",
        lazy="selectin",
    )
    events: Mapped[list[ParcelEvent]] = relationship(
        back_populates="parcel", order_by="(ParcelEvent.occurred_at, ParcelEvent.id)",
        lazy="select",
    )

    @property
    def international(self) -> bool:
        return self.direction != Direction.DOMESTIC

    @property
    def declared_total(self) -> tuple[int, str] | None:
        """Sum of the articles' values when they share one currency."""
        currencies = {a.value_currency for a in self.articles}
        if len(currencies) != 1:
            return None
        return sum(a.value_amount for a in self.articles), currencies.pop()


class ParcelLabel(Base):
    """A parcel's label as first printed, kept so that a reprint (and the counter's busy
    hour) serves stored bytes instead of drawing it again.

    `fingerprint` hashes everything the label shows and the drawing's version
    (tracking.labels.label_fingerprint): when any of it changes, the stored PDF no
    longer matches and the next print draws and stores it afresh.
    """

    __tablename__ = "parcel_labels"
    __table_args__ = (UniqueConstraint("parcel_id", "size", name="uq_parcel_labels_parcel_size"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    parcel_id: Mapped[int] = mapped_column(ForeignKey("parcels.id", ondelete="CASCADE"))
    size: Mapped[str] = mapped_column(String(8))  # tracking.labels.SIZES: 4x6, a6
    fingerprint: Mapped[str] = mapped_column(String(64))
    pdf: Mapped[bytes] = mapped_column(LargeBinary)
    rendered_at: Mapped[datetime] = mapped_column(default=utcnow)


class ContentsCategory(enum.StrEnum):
    GIFT = "gift"
    DOCUMENTS = "documents"
    COMMERCIAL_SAMPLE = "commercial_sample"
    RETURNED_GOODS = "returned_goods"
    SALE_OF_GOODS = "sale_of_goods"
    OTHER = "other"


class ParcelArticle(Base):
    """One line of the customs declaration: what is inside, how many, worth what."""

    __tablename__ = "parcel_articles"

    id: Mapped[int] = mapped_column(primary_key=True)
    parcel_id: Mapped[int] = mapped_column(ForeignKey("parcels.id", ondelete="CASCADE"),
                                           index=True)
    position: Mapped[int] = mapped_column(default=1)
    description: Mapped[str] = mapped_column(String(200))
    quantity: Mapped[int] = mapped_column(default=1)
    net_weight_grams: Mapped[int] = mapped_column(default=0)
    # The line's total value (as on CN22/CN23), in minor units of value_currency.
    value_amount: Mapped[int] = mapped_column(default=0)
    value_currency: Mapped[str] = mapped_column(String(3), default="IQD")
    hs_code: Mapped[str | None] = mapped_column(String(12))
    origin_country: Mapped[str | None] = mapped_column(String(2))

    parcel: Mapped[Parcel] = relationship(back_populates="articles")


class ParcelEvent(Base):
    """One UPU event as reported: kept even when late, repeated ids are refused by `uid`."""

    __tablename__ = "parcel_events"
    __table_args__ = (
        Index("ix_parcel_events_parcel_time", "parcel_id", "occurred_at"),
        # The dashboard counts acceptances and hand-overs per day (tracking.services.figures).
        Index("ix_parcel_events_code_time", "code", "occurred_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # The reporter's id for the event (or a digest of its facts): a repeat is ignored.
    uid: Mapped[str] = mapped_column(String(80), unique=True)
    parcel_id: Mapped[int] = mapped_column(ForeignKey("parcels.id", ondelete="CASCADE"))
    code: Mapped[str] = mapped_column(String(3))
    status: Mapped[str] = mapped_column(String(24))
    occurred_at: Mapped[datetime]
    # The reporter's UTC offset in minutes, so the local time it gave can be shown again.
    occurred_utc_offset: Mapped[int] = mapped_column(default=180)
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    office_id: Mapped[int | None] = mapped_column(ForeignKey("post_offices.id"))
    location: Mapped[str] = mapped_column(String(120), default="")  # partner's place name
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    partner: Mapped[str | None] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(String(16), default="counter")
    reason_code: Mapped[str | None] = mapped_column(String(32))
    action_code: Mapped[str | None] = mapped_column(String(32))
    retention_reason: Mapped[str | None] = mapped_column(String(300))
    receiver_name: Mapped[str | None] = mapped_column(String(200))
    # The number of the identity document the receiver showed at a hand-over (EMI).
    # Staff see it on the parcel page; public tracking never shows it.
    receiver_id_number: Mapped[str | None] = mapped_column(String(40))
    note: Mapped[str] = mapped_column(String(500), default="")
    # Happened after the parcel's final event: kept for the record, ignored for status.
    after_final: Mapped[bool] = mapped_column(default=False)
    # Came before a stage the parcel had already reached (tracking.status rule 8): kept
    # and shown to staff, ignored for status.
    out_of_sequence: Mapped[bool] = mapped_column(default=False)

    parcel: Mapped[Parcel] = relationship(back_populates="events")


class TariffLine(Base):
    """Customs duty rate for goods whose HS code starts with `hs_prefix`."""

    __tablename__ = "customs_tariff"

    id: Mapped[int] = mapped_column(primary_key=True)
    hs_prefix: Mapped[str] = mapped_column(String(10), unique=True)
    rate_bp: Mapped[int]  # basis points: 500 = 5 %
    description_en: Mapped[str] = mapped_column(String(200), default="")
    description_ar: Mapped[str] = mapped_column(String(200), default="")
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class PostageBand(Base):
    """Postage of one weight band of a service in a zone: a chargeable weight over
    `from_grams` and up to and including `to_grams` costs `price_iqd`.

    A service's bands in a zone run from 0 without gaps or overlaps
    (tracking.services.postage checks it and replaces them all at once); zone "any" is the
    tariff of zones that have no bands of their own.
    """

    __tablename__ = "postage_bands"
    __table_args__ = (UniqueConstraint("service", "zone", "from_grams"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    service: Mapped[str] = mapped_column(String(16))
    zone: Mapped[str] = mapped_column(String(32))
    from_grams: Mapped[int]
    to_grams: Mapped[int]
    price_iqd: Mapped[int]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class TariffImportPreview(Base):
    """A tariff file an administrator previewed: the rows it would write and the state of
    the tariff it was compared with. Applying it names its random `token`; it applies
    once, and only while the tariff is still as it was previewed against."""

    __tablename__ = "customs_tariff_previews"

    id: Mapped[int] = mapped_column(primary_key=True)
    token: Mapped[str] = mapped_column(String(64), unique=True)
    file_sha256: Mapped[str] = mapped_column(String(64))
    basis: Mapped[str] = mapped_column(String(64))  # fingerprint of the tariff previewed
    rows: Mapped[list[Any]] = mapped_column(JSON, default=list)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    applied_at: Mapped[datetime | None]
    applied_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))


class CustomsState(enum.StrEnum):
    ASSESSING = "assessing"
    HELD = "held"
    RELEASED = "released"
    REFUSED = "refused"


class CustomsCase(Base):
    """The customs assessment of one inbound parcel and what was decided."""

    __tablename__ = "customs_cases"

    id: Mapped[int] = mapped_column(primary_key=True)
    parcel_id: Mapped[int] = mapped_column(ForeignKey("parcels.id", ondelete="CASCADE"),
                                           unique=True)
    state: Mapped[str] = mapped_column(String(16), default=CustomsState.ASSESSING, index=True)
    form: Mapped[str] = mapped_column(String(4), default="CN22")
    sdr_rate: Mapped[str] = mapped_column(String(20), default="")  # IQD per SDR used
    declared_value_iqd: Mapped[int] = mapped_column(default=0)
    duty_iqd: Mapped[int] = mapped_column(default=0)
    inspection_fee_iqd: Mapped[int] = mapped_column(default=0)
    stamp_fee_iqd: Mapped[int] = mapped_column(default=0)
    # What is still to pay: the assessment less `prepaid_iqd`, never below zero.
    total_due_iqd: Mapped[int] = mapped_column(default=0)
    # Duty and fees paid before arrival (the parcel's), credited at assessment.
    prepaid_iqd: Mapped[int] = mapped_column(default=0)
    lines: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    hold_reason_code: Mapped[str | None] = mapped_column(String(32))
    hold_reason: Mapped[str | None] = mapped_column(String(300))
    assessed_at: Mapped[datetime | None]
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    decided_at: Mapped[datetime | None]
    decision_note: Mapped[str] = mapped_column(Text, default="")
    paid_at: Mapped[datetime | None]
    payment_id: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    parcel: Mapped[Parcel] = relationship()

    @property
    def duty_outstanding(self) -> bool:
        return self.total_due_iqd > 0 and self.paid_at is None

    @property
    def assessed_total_iqd(self) -> int:
        """Duty and fees as customs assessed them, before any prepaid credit."""
        return self.duty_iqd + self.inspection_fee_iqd + self.stamp_fee_iqd

    @property
    def prepaid_excess_iqd(self) -> int:
        """What was paid before arrival beyond the assessment: owed back to the payer."""
        return max(0, self.prepaid_iqd - self.assessed_total_iqd)


class CustomsCaseTransition(Base):
    """One step of a customs case's life: from, to, who, when, why (append-only).

    Written only by tracking.services.customs_state.apply_transition.
    """

    __tablename__ = "customs_case_transitions"

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("customs_cases.id", ondelete="CASCADE"),
                                         index=True)
    from_status: Mapped[str | None] = mapped_column(String(16))  # None: the case opened
    to_status: Mapped[str] = mapped_column(String(16))
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    reason: Mapped[str] = mapped_column(String(300), default="")
    occurred_at: Mapped[datetime] = mapped_column(default=utcnow)


append_only(CustomsCaseTransition.__table__)


class IngestBatch(Base):
    """A file or API call of events from a partner post or a handheld, processed by a job."""

    __tablename__ = "event_ingest_batches"

    id: Mapped[int] = mapped_column(primary_key=True)
    source: Mapped[str] = mapped_column(String(16))  # api, csv
    partner: Mapped[str | None] = mapped_column(String(64))
    filename: Mapped[str] = mapped_column(String(200), default="")
    submitted_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    state: Mapped[str] = mapped_column(String(16), default="queued")  # queued, done
    total_rows: Mapped[int] = mapped_column(default=0)
    accepted: Mapped[int] = mapped_column(default=0)
    duplicates: Mapped[int] = mapped_column(default=0)
    rejected: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]


class IngestRow(Base):
    __tablename__ = "event_ingest_rows"
    __table_args__ = (UniqueConstraint("batch_id", "row_no"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    batch_id: Mapped[int] = mapped_column(
        ForeignKey("event_ingest_batches.id", ondelete="CASCADE"), index=True
    )
    row_no: Mapped[int]
    data: Mapped[dict[str, Any]]
    outcome: Mapped[str | None] = mapped_column(String(12))  # accepted, duplicate, rejected
    reason_code: Mapped[str | None] = mapped_column(String(32))
    reason: Mapped[str | None] = mapped_column(String(300))
    event_id: Mapped[int | None] = mapped_column(ForeignKey("parcel_events.id"))


class TrackingPartner(Base):
    """A partner post or handheld fleet that reports tracking events through the API.

    Its API keys (app.api, owner kind "partner") hold the `tracking:events:write` scope;
    `name` is what its events and batches record as their partner.
    """

    __tablename__ = "tracking_partners"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

