"""What a department is told about an order (a new dispatch, a rework, an urging): one
:class:`Notice` per department involved, for its portal page and its e-mail.

A notice carries only what the department needs to find and act on the order: its number,
kind, subject, place and time limit. Never the citizen's name, number, e-mail or words (the
description may quote a phone number): the department reads those on the portal, masked per
:meth:`~workorders.orders.WorkOrder.seen_by`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from zoneinfo import ZoneInfo

from workorders.orders import WorkOrder

NEWS_ZH = {
    "dispatched": "新派工单",
    "reworked": "工单重办",
    "urged": "工单催办",
    "escalated": "工单超期督办",
}


@dataclass(frozen=True)
class Notice:
    department: str
    part: str  # "lead" or "assisting"
    news: str  # a key of NEWS_ZH
    number: str
    category: str
    subject: str
    location_text: str
    urgent: bool
    due_at: datetime | None

    def due_text(self, zone: ZoneInfo) -> str:
        if self.due_at is None:
            return "无时限"
        return self.due_at.astimezone(zone).strftime("%Y-%m-%d %H:%M")

    def email(self, sender: str, to: str, zone: ZoneInfo, portal_url: str = "") -> EmailMessage:
        """The notice as an e-mail to the department's address."""
        news = NEWS_ZH.get(self.news, self.news)
        part = "主办" if self.part == "lead" else "协办"
        message = EmailMessage()
        message["From"], message["To"] = sender, to
        due = self.due_text(zone)
        message["Subject"] = f"【12345】{news} {self.number}（{part}）办理时限 {due}"
        lines = [
            f"{self.department}：",
            "",
            f"{news}：工单 {self.number}（{part}{'，紧急' if self.urgent else ''}）",
            f"类别：{self.category}",
            f"事项：{self.subject}",
            f"地点：{self.location_text or '—'}",
            f"办理时限：{due}（{zone.key}）",
            "",
            f"请登录部门工作台签收办理：{portal_url or '/portal'}",
        ]
        message.set_content("\n".join(lines))
        return message

    def sms_text(self, zone: ZoneInfo) -> str:
        """The notice as one short text message (no citizen's data, like the e-mail)."""
        news = NEWS_ZH.get(self.news, self.news)
        part = "主办" if self.part == "lead" else "协办"
        urgent = "，紧急" if self.urgent else ""
        return (f"【12345】{news} {self.number}（{part}{urgent}）{self.subject[:40]}，"
                f"办理时限 {self.due_text(zone)}，请登录部门工作台签收办理。")  # fmt: skip


def notices(order: WorkOrder, news: str) -> list[Notice]:
    """One notice for the lead department and one for each assisting department."""
    parts = [(order.lead_department, "lead")]
    parts += [(d, "assisting") for d in order.assisting_departments if d != order.lead_department]
    return [
        Notice(
            department,
            part,
            news,
            order.number,
            order.category,
            order.subject,
            order.location_text,
            order.urgent,
            order.due_at,
        )  # fmt: skip
        for department, part in parts
        if department
    ]
