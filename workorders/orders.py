"""The work order as the rest of the system sees it: frozen snapshots, actors, new requests,
and :meth:`WorkOrder.seen_by`, the one rule for what each role sees of an order."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from calls.callerid import mask_number
from workorders.models import WorkOrderEventRow, WorkOrderRow
from workorders.states import State

CHANNELS = ("phone", "web", "sms", "fax", "app")


class Role(StrEnum):
    OPERATOR = "operator"
    DEPARTMENT = "department"
    SUPERVISOR = "supervisor"
    SYSTEM = "system"  # jobs and intake adapters: call drafts, SMS, Open311, supervision, revisit


class Satisfaction(StrEnum):
    VERY_SATISFIED = "very_satisfied"
    SATISFIED = "satisfied"
    DISSATISFIED = "dissatisfied"


@dataclass(frozen=True)
class Actor:
    name: str
    role: Role
    department: str = ""  # a department's own name, for department actors


SYSTEM = Actor("system", Role.SYSTEM)


@dataclass(frozen=True)
class NewWorkOrder:
    channel: str
    category: str = ""  # empty: suggested by the dispatch rules from the text
    subject: str = ""
    description: str = ""
    caller_name: str = ""
    caller_phone: str = ""
    confidential: bool = False
    location_text: str = ""
    lat: float | None = None
    long: float | None = None
    address_id: str = ""
    zipcode: str = ""
    transcript: str = ""
    recording_path: str = ""
    attachment_path: str = ""
    call_id: str = ""
    seat: str = ""
    urgent: bool = False
    lead_department: str = ""
    assisting_departments: tuple[str, ...] = ()
    email: str = ""
    service_code: str = ""
    device_id: str = ""
    account_id: str = ""
    media_url: str = ""
    attributes: Mapping[str, Any] = field(default_factory=dict)
    public_id: str | None = None  # Open311 requests: their random public id
    published: bool = False  # the citizen agreed, at submission, to the public feed


#: roles that call the citizen back (and so see the number and the e-mail address)
CALLING_ROLES = frozenset({Role.OPERATOR, Role.SUPERVISOR, Role.SYSTEM})
#: what tells who complained, beyond the contact fields: voice, documents, the call
WHO_COMPLAINED = ("caller_name", "caller_phone", "email", "transcript", "recording_path",
                  "attachment_path", "call_id")  # fmt: skip


@dataclass(frozen=True)
class HistoryEntry:
    at: datetime
    actor: str
    role: str
    action: str
    from_state: str
    to_state: str
    note: str


@dataclass(frozen=True)
class WorkOrder:
    number: str
    channel: str
    state: State
    created_at: datetime
    updated_at: datetime
    caller_name: str
    caller_phone: str
    confidential: bool
    email: str
    category: str
    subject: str
    location_text: str
    lat: float | None
    long: float | None
    address_id: str
    zipcode: str
    description: str
    transcript: str
    recording_path: str
    call_id: str
    urgent: bool
    lead_department: str
    assisting_departments: tuple[str, ...]
    due_at: datetime | None
    extension_days: int
    requested_extension_days: int
    supervision_level: int
    rework_count: int
    reply: str
    satisfaction: str
    resolved: bool | None
    merged_into: str
    service_code: str
    token: str | None
    media_url: str
    history: tuple[HistoryEntry, ...]
    attachment_path: str = ""
    seat: str = ""  # the seat that took the call (phone orders)
    public_id: str | None = None
    published: bool = False
    no_revisit: bool | None = None  # the citizen's wish (None: not asked), see revisit.rules

    def seen_by(self, role: Role) -> dict[str, Any]:
        """The order as JSON for ``role``: the centre (who calls back) sees everything; a
        department sees what it needs to act (content, place), the number masked and no
        e-mail, and nothing of who complained when the order is confidential."""
        out = self._json()
        if role in CALLING_ROLES:
            return out
        out["caller_phone"] = mask_number(self.caller_phone) if self.caller_phone else ""
        out["email"] = ""
        if self.confidential:
            out.update(dict.fromkeys(WHO_COMPLAINED, ""))
        return out

    def _json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name in self.__dataclass_fields__:
            value = getattr(self, name)
            if isinstance(value, datetime):
                value = value.isoformat()
            elif name == "history":
                value = [{**entry.__dict__, "at": entry.at.isoformat()} for entry in self.history]
            elif isinstance(value, tuple):
                value = list(value)
            out[name] = value
        return out


def _entry(row: WorkOrderEventRow) -> HistoryEntry:
    return HistoryEntry(
        at=row.at,
        actor=row.actor,
        role=row.role,
        action=row.action,
        from_state=row.from_state,
        to_state=row.to_state,
        note=row.note,
    )


def snapshot(row: WorkOrderRow) -> WorkOrder:
    return WorkOrder(
        number=row.number,
        channel=row.channel,
        state=State(row.state),
        created_at=row.created_at,
        updated_at=row.updated_at,
        caller_name=row.caller_name,
        caller_phone=row.caller_phone,
        confidential=row.confidential,
        email=row.email,
        category=row.category,
        subject=row.subject,
        location_text=row.location_text,
        lat=row.lat,
        long=row.long,
        address_id=row.address_id,
        zipcode=row.zipcode,
        description=row.description,
        transcript=row.transcript,
        recording_path=row.recording_path,
        call_id=row.call_id,
        urgent=row.urgent,
        lead_department=row.lead_department,
        assisting_departments=tuple(row.assisting_departments or ()),
        due_at=row.due_at,
        extension_days=row.extension_days,
        requested_extension_days=row.requested_extension_days,
        supervision_level=row.supervision_level,
        rework_count=row.rework_count,
        reply=row.reply,
        satisfaction=row.satisfaction,
        resolved=row.resolved,
        merged_into=row.merged_into,
        service_code=row.service_code,
        token=row.token,
        media_url=row.media_url,
        history=tuple(_entry(event) for event in row.history),
        attachment_path=row.attachment_path,
        seat=row.seat,
        public_id=row.public_id,
        published=row.published,
        no_revisit=(row.attributes or {}).get("no_revisit"),
    )
