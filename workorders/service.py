"""The work-order service: every action of the closed loop, stored in SQL with its history.

Each action loads the order under a row lock, checks the actor's role (a department acts only
on orders it leads), moves the state machine, and appends who did what, when, to the history.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from calls.callerid import mask_number
from workorders.dispatch import CATEGORIES
from workorders.errors import Forbidden, IllegalTransition, InvalidInput, NotFound
from workorders.models import WorkOrderRow
from workorders.orders import (
    CHANNELS,
    SYSTEM,
    Actor,
    NewWorkOrder,
    Satisfaction,
    WorkOrder,
    snapshot,
)
from workorders.states import CLOSED, SUPERVISED, TERMINAL, Action, State
from workorders.store import WorkOrderStore, authorize

log = logging.getLogger(__name__)

CALL_DRAFTER = replace(SYSTEM, name="call-drafter")

EDITABLE = frozenset(
    {"category", "subject", "description", "caller_name", "caller_phone", "confidential",
     "location_text", "lat", "long", "urgent", "lead_department", "assisting_departments",
     "no_revisit"}
)  # fmt: skip
DESCRIPTION_LIMIT = 4000


@dataclass(frozen=True)
class PhoneStatus:
    """An order as a caller may hear it by phone: no names, no text, only where it stands."""

    state: State
    merged_into: str | None  # the order a duplicate was merged into
    due: date | None  # local day of the time limit, while a department owes an answer


class WorkOrderService(WorkOrderStore):
    """Every action of the closed loop; role checks and history come from the store."""

    #: told of a call's order drafted or given its transcript (the operator's live desk)
    on_drafted: Callable[[WorkOrder], None] | None = None
    #: told of news for the departments of an order: ``dispatched`` (dispatch, reassign),
    #: ``reworked``, ``urged``, ``escalated`` (the department portal: live page and e-mail)
    on_department_news: Callable[[WorkOrder, str], None] | None = None

    # -- intake -------------------------------------------------------------------------
    async def create(
        self, new: NewWorkOrder, actor: Actor, *, issue_token: bool = False, queue: str = ""
    ) -> WorkOrder:
        """Register a request; blanks (category, subject, place, department) are suggested
        (``queue``: the queue a caller chose, which sets the kind of a call's order)."""
        authorize(actor, "create")
        new = self._completed(new, queue)
        now = self.clock()
        async with self.sessions.begin() as session:
            row = WorkOrderRow(
                number=await self._next_number(session, now),
                state=State.REGISTERED.value,
                created_at=now,
                updated_at=now,
                token=secrets.token_hex(8) if issue_token else None,
                **{k: v for k, v in new.__dict__.items() if k not in ("assisting_departments",)},
                assisting_departments=list(new.assisting_departments),
            )
            row.attributes = dict(new.attributes)
            row.history = [self._event(actor, "create", "", State.REGISTERED, new.channel, now)]
            session.add(row)
            await session.flush()
            log.info("work order %s registered from %s by %s", row.number, new.channel, actor.name)
            return snapshot(row)

    async def draft_from_call(
        self,
        caller_phone: str,
        started_at: datetime,
        transcript_text: str,
        recording_path: str,
        call_id: str,
        *,
        seat: str = "",
        queue: str = "",
    ) -> WorkOrder:
        """Draft the work order of an answered call, for the operator: exactly once per call.

        The call's uniqueid is the idempotency key (unique in SQL): drafting a call again,
        e.g. when intake's outbox retries after a crash, returns the order already drafted.
        The queue the citizen chose sets the order's kind; ``seat`` took the call.
        """
        if not call_id:
            raise InvalidInput("a call's draft needs the call's uniqueid")
        existing = await self.by_call(call_id)
        if existing is not None:
            # opened at the desk during the call: the recording (and transcript) join it
            if (transcript_text and not existing.transcript) or (
                recording_path and not existing.recording_path
            ):
                existing = await self._transcribed(existing.number, transcript_text,
                                                   recording_path)  # fmt: skip
            else:
                log.info("call %s already drafted as %s", call_id, existing.number)
            self._drafted(existing)
            return existing
        new = NewWorkOrder(
            channel="phone",
            caller_phone=caller_phone,
            transcript=transcript_text,
            description=transcript_text[:DESCRIPTION_LIMIT],
            recording_path=recording_path,
            call_id=call_id,
            seat=seat,
        )
        try:
            order = await self.create(new, CALL_DRAFTER, queue=queue)
        except IntegrityError:  # drafted meanwhile by another engine or a retry
            existing = await self.by_call(call_id)
            if existing is None:
                raise
            return existing
        log.info("call %s from %s (at %s, queue %s, seat %s) drafted as %s: %s",
                 call_id, mask_number(caller_phone), started_at.isoformat(), queue or "-",
                 seat or "-", order.number, order.category)  # fmt: skip
        self._drafted(order)
        return order

    async def _transcribed(self, number: str, transcript: str, recording_path: str) -> WorkOrder:
        """The recording and transcript of a call whose order was opened before the call
        ended (a call recorded but not transcribed brings its recording alone); what the
        operator wrote meanwhile stays."""

        def change(row: WorkOrderRow, now: datetime) -> None:
            row.transcript = transcript or row.transcript
            row.recording_path = recording_path or row.recording_path
            row.description = row.description or transcript[:DESCRIPTION_LIMIT]

        return await self._act(number, CALL_DRAFTER, "transcript", "", change)

    async def take_over(self, number: str, seat: str) -> WorkOrder:
        """The order's call was put through to ``seat`` (a transfer or a consultation): the
        order, opened at the first seat's desk, goes with the call to the operator talking
        now (its desk receives the order's news)."""

        def change(row: WorkOrderRow, now: datetime) -> None:
            row.seat = seat

        return await self._act(number, CALL_DRAFTER, "taken-over", f"seat {seat}", change)

    def _tell_departments(self, order: WorkOrder, news: str) -> WorkOrder:
        if self.on_department_news is not None:
            try:
                self.on_department_news(order, news)
            except Exception:  # the action is stored; a notice not sent is logged
                log.exception("work order %s: departments not told (%s)", order.number, news)
        return order

    def _drafted(self, order: WorkOrder) -> None:
        if self.on_drafted is not None:
            try:
                self.on_drafted(order)
            except Exception:  # the draft is stored; a live page missing it is not fatal
                log.exception("work order %s: drafted-order listener failed", order.number)

    async def by_call(self, call_id: str) -> WorkOrder | None:
        """The order drafted from the call (or fax) with this uniqueid, if any."""
        async with self.sessions() as session:
            row = await session.scalar(select(WorkOrderRow).where(WorkOrderRow.call_id == call_id))
            return snapshot(row) if row is not None else None

    def _completed(self, new: NewWorkOrder, queue: str = "") -> NewWorkOrder:
        if new.channel not in CHANNELS:
            raise InvalidInput(f"unknown channel {new.channel!r}; one of {', '.join(CHANNELS)}")
        if new.category and new.category not in CATEGORIES:
            known = ", ".join(CATEGORIES)
            raise InvalidInput(f"unknown category {new.category!r}; one of {known}")
        if len(new.description) > DESCRIPTION_LIMIT:
            raise InvalidInput(f"description longer than {DESCRIPTION_LIMIT} characters")
        texts = (new.subject, new.description, new.transcript, new.location_text)
        hint = self.rules.suggest(" ".join(filter(None, texts)), queue)
        return replace(
            new,
            category=new.category or hint.category,
            subject=(new.subject or hint.subject)[:128],
            location_text=new.location_text or hint.location,
            urgent=new.urgent or hint.urgent,
            lead_department=new.lead_department or (hint.lead_department or ""),
            assisting_departments=new.assisting_departments or hint.assisting_departments,
            # Orders not filed under an Open311 service (phone, SMS, fax) carry their kind.
            service_code=new.service_code or new.category or hint.category,
        )

    async def follow_up(self, number: str, actor: Actor, text: str) -> WorkOrder:
        """The citizen adds to an open order (e.g. the place an SMS reply was asked for): a
        history line, the text appended to the description, a missing place filled in."""
        hint = self.rules.suggest(text)

        def change(row: WorkOrderRow, now: datetime) -> None:
            if State(row.state) in CLOSED:
                raise IllegalTransition("follow up", row.state)
            row.description = f"{row.description}\n{text}".strip()[:DESCRIPTION_LIMIT]
            if not row.location_text:
                row.location_text = (hint.location or text)[:256]

        return await self._act(number, actor, "follow-up", text, change)

    async def phone_status(self, number: str) -> PhoneStatus | None:
        """What the IVR tells a caller after 3 + number + # (the words are the IVR's, in the
        caller's language); None for an unknown number."""
        number = number.strip()
        if not number.isdigit():
            return None
        try:
            order = await self.get(number)
        except NotFound:
            return None
        owed = order.due_at is not None and order.state not in (State.REPLIED, *CLOSED)
        due = self.limits.local_date(order.due_at) if owed and order.due_at else None
        merged = order.merged_into if order.state is State.MERGED else None
        return PhoneStatus(order.state, merged or None, due)

    # -- the centre -------------------------------------------------------------------------
    async def update(
        self, number: str, actor: Actor, changes: Mapping[str, Any], note: str = ""
    ) -> WorkOrder:
        """Correct a draft or an open order; only :data:`EDITABLE` fields, no state change."""
        unknown = sorted(set(changes) - EDITABLE)
        if unknown:
            raise InvalidInput(f"fields not editable: {', '.join(unknown)}")
        if "category" in changes and changes["category"] not in CATEGORIES:
            raise InvalidInput(f"unknown category {changes['category']!r}")
        if len(str(changes.get("description", ""))) > DESCRIPTION_LIMIT:
            raise InvalidInput(f"description longer than {DESCRIPTION_LIMIT} characters")

        def change(row: WorkOrderRow, now: datetime) -> None:
            if State(row.state) in TERMINAL:
                raise IllegalTransition("update", row.state)
            for name, value in changes.items():
                if name == "no_revisit":  # the citizen's wish, read by the revisit schedule
                    row.attributes = {**(row.attributes or {}), "no_revisit": value}
                    continue
                setattr(row, name, list(value) if name == "assisting_departments" else value)

        note = note or "changed " + ", ".join(sorted(changes))
        return await self._act(number, actor, "update", note, change)

    async def answer(self, number: str, actor: Actor, answer: str) -> WorkOrder:
        """Answered directly by the operator (from the knowledge base): resolved at once."""

        def change(row: WorkOrderRow, now: datetime) -> None:
            row.reply = answer

        return await self._act(number, actor, Action.ANSWER, answer, change)

    async def dispatch(
        self,
        number: str,
        actor: Actor,
        *,
        lead_department: str = "",
        assisting: Sequence[str] | None = None,
        note: str = "",
    ) -> WorkOrder:
        """Send to a lead department (default: the suggested one); the time limit starts now."""
        return await self._send(number, actor, Action.DISPATCH, lead_department, assisting, note)

    async def reassign(
        self,
        number: str,
        actor: Actor,
        *,
        lead_department: str,
        assisting: Sequence[str] | None = None,
        note: str = "",
    ) -> WorkOrder:
        """Dispatch a returned order again, to the department that is in charge after all."""
        return await self._send(number, actor, Action.REASSIGN, lead_department, assisting, note)

    async def _send(
        self, number: str, actor: Actor, action: Action, lead: str,
        assisting: Sequence[str] | None, note: str,
    ) -> WorkOrder:  # fmt: skip
        def change(row: WorkOrderRow, now: datetime) -> None:
            row.lead_department = lead or row.lead_department
            if not row.lead_department:
                raise InvalidInput("a lead department is needed to dispatch")
            if assisting is not None:
                row.assisting_departments = [d for d in assisting if d != row.lead_department]
            row.dispatched_at = now
            row.due_at = self.limits.due_for(now, row.category, row.urgent)
            row.supervision_level = 0

        order = await self._act(number, actor, action, note or lead, change)
        return self._tell_departments(order, "dispatched")

    async def review(self, number: str, actor: Actor, *, passed: bool, note: str = "") -> WorkOrder:
        """Check a department's reply: passed closes it, otherwise it goes back to handling."""
        return await self._act(
            number, actor, Action.REVIEW if passed else Action.REJECT_REPLY, note
        )

    async def record_revisit(
        self,
        number: str,
        actor: Actor,
        *,
        satisfaction: Satisfaction,
        resolved: bool,
        note: str = "",
    ) -> WorkOrder:
        """Store the revisit's result; a matter not resolved, or a dissatisfied citizen, sends
        a dispatched order back for rework."""

        def change(row: WorkOrderRow, now: datetime) -> None:
            row.satisfaction, row.resolved = satisfaction.value, resolved

        order = await self._act(number, actor, Action.REVISIT, note or satisfaction, change)
        if (satisfaction is Satisfaction.DISSATISFIED or not resolved) and order.lead_department:
            why = "dissatisfied" if satisfaction is Satisfaction.DISSATISFIED else "not resolved"
            order = await self.rework(number, actor, note=f"{why} revisit: {note}")
        return order

    async def rework(self, number: str, actor: Actor, note: str = "") -> WorkOrder:
        """Back to the lead department with a fresh time limit (重办)."""

        def change(row: WorkOrderRow, now: datetime) -> None:
            row.rework_count += 1
            row.dispatched_at = now
            row.due_at = self.limits.due_for(now, row.category, row.urgent)
            row.supervision_level = 0
            row.reply = ""

        return self._tell_departments(
            await self._act(number, actor, Action.REWORK, note, change), "reworked"
        )

    async def archive(self, number: str, actor: Actor, note: str = "") -> WorkOrder:
        return await self._act(number, actor, Action.ARCHIVE, note)

    async def merge(self, duplicate: str, into: str, actor: Actor, note: str = "") -> WorkOrder:
        """Merge a duplicate request into the order handling the same matter (并单)."""
        if duplicate == into:
            raise InvalidInput("a work order cannot be merged into itself")
        target = await self.get(into)
        if target.state in TERMINAL:
            raise IllegalTransition("merge into", target.state.value)

        def change(row: WorkOrderRow, now: datetime) -> None:
            row.merged_into = into

        merged = await self._act(duplicate, actor, Action.MERGE, note or f"into {into}", change)
        await self._act(into, actor, "merged", f"{duplicate} merged in: {note}".strip(": "))
        return merged

    # -- departments ------------------------------------------------------------------------
    async def sign(self, number: str, actor: Actor, note: str = "") -> WorkOrder:
        return await self._act(number, actor, Action.SIGN, note)

    async def return_order(self, number: str, actor: Actor, reason: str) -> WorkOrder:
        """A department sends back a misrouted order, within the return window, with a reason."""
        if not reason.strip():
            raise InvalidInput("a returned work order needs a reason")

        def change(row: WorkOrderRow, now: datetime) -> None:
            if row.dispatched_at and not self.limits.may_return(row.dispatched_at, now):
                days = self.limits.return_window_days
                raise InvalidInput(f"the return window of {days} working days has passed")

        return await self._act(number, actor, Action.RETURN, reason, change)

    async def start(self, number: str, actor: Actor, note: str = "") -> WorkOrder:
        return await self._act(number, actor, Action.START, note)

    async def request_extension(
        self, number: str, actor: Actor, *, days: int, reason: str
    ) -> WorkOrder:
        def change(row: WorkOrderRow, now: datetime) -> None:
            if row.due_at is None:
                raise InvalidInput("the work order has no time limit to extend")
            self.limits.extend(row.due_at, days, row.extension_days)  # refuses past the ceiling
            row.requested_extension_days = days

        return await self._act(number, actor, Action.REQUEST_EXTENSION, f"{days}: {reason}", change)

    async def approve_extension(self, number: str, actor: Actor, note: str = "") -> WorkOrder:
        def change(row: WorkOrderRow, now: datetime) -> None:
            assert row.due_at is not None  # checked when the extension was requested
            days = row.requested_extension_days
            row.due_at = self.limits.extend(row.due_at, days, row.extension_days)
            row.extension_days += days
            row.requested_extension_days = 0
            row.supervision_level = 0

        return await self._act(number, actor, Action.APPROVE_EXTENSION, note, change)

    async def refuse_extension(self, number: str, actor: Actor, note: str = "") -> WorkOrder:
        def change(row: WorkOrderRow, now: datetime) -> None:
            row.requested_extension_days = 0

        return await self._act(number, actor, Action.REFUSE_EXTENSION, note, change)

    async def reply(self, number: str, actor: Actor, text: str) -> WorkOrder:
        """The department's handling result (办结反馈)."""
        if not text.strip():
            raise InvalidInput("a reply needs the handling result")

        def change(row: WorkOrderRow, now: datetime) -> None:
            row.reply = text

        return await self._act(number, actor, Action.REPLY, text, change)

    async def add_note(self, number: str, actor: Actor, note: str) -> WorkOrder:
        """A progress note (办理进度) by the lead or an assisting department, or the centre:
        a history line, no state change."""
        if not note.strip():
            raise InvalidInput("a progress note needs its text")

        def change(row: WorkOrderRow, now: datetime) -> None:
            if State(row.state) in TERMINAL:
                raise IllegalTransition("note", row.state)

        return await self._act(number, actor, "note", note, change)

    async def assist_reply(self, number: str, actor: Actor, text: str) -> WorkOrder:
        """An assisting department's part of the reply (协办反馈): in the history, where the
        lead department and the review read it; the lead department's reply closes it."""
        if not text.strip():
            raise InvalidInput("an assisting reply needs its text")

        def change(row: WorkOrderRow, now: datetime) -> None:
            if actor.department not in (row.assisting_departments or ()):
                raise Forbidden(f"{actor.department} does not assist work order {row.number}")
            if State(row.state) not in SUPERVISED:
                raise IllegalTransition("assist-reply", row.state)

        return await self._act(number, actor, "assist-reply", text, change)

    # -- supervision ------------------------------------------------------------------------
    async def supervise_one(self, number: str, actor: Actor, level: int, note: str) -> WorkOrder:
        """Urge (level 1) or escalate (level 2) one order; written to its history."""
        authorize(actor, "supervise")
        action = "urge" if level == 1 else "escalate"

        def change(row: WorkOrderRow, now: datetime) -> None:
            if State(row.state) not in SUPERVISED:
                raise IllegalTransition(action, row.state)
            row.supervision_level = max(row.supervision_level, level)

        order = await self._act(number, actor, action, note, change)
        return self._tell_departments(order, "urged" if level == 1 else "escalated")
