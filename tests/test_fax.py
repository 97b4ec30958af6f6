"""Fax intake end to end, as a citizen's fax machine would: a call to 12345 (a Local channel
whose other half runs Asterisk's own SendFAX) walks the voice menu, presses 5 at the main
menu, reaches ``hotline-action,fax`` (ReceiveFAX); res_fax's ReceiveFAX event reaches the
engine's own handler (the test adds none) and exactly one work order of channel "fax" holds
the TIFF."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import pytest
from conftest import AmiEvents, eventually, new_caller
from panoramisk.message import Message
from PIL import Image, ImageDraw

from hotline.engine import Hotline
from intake.fax import received_fax
from ivr.prompts import PromptLibrary
from workorders.orders import WorkOrder

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def fax_tiff(path: Path, pages: int = 1) -> Path:
    """A fax-format TIFF: 1-bit, 1728 px wide, 204x196 dpi, CCITT group 4."""
    images = []
    for number in range(pages):
        page = Image.new("1", (1728, 800), 1)
        draw = ImageDraw.Draw(page)
        draw.rectangle((100, 100, 1628, 700), outline=0, width=6)
        draw.text((200, 300), f"12345 hotline fax test page {number + 1}", fill=0)
        images.append(page)
    images[0].save(
        path, compression="group4", dpi=(204, 196), save_all=True, append_images=images[1:]
    )
    return path


def tiff_facts(path: Path) -> tuple[int, int, int]:
    """(bytes, pages, width) of a received TIFF."""
    with Image.open(path) as tiff:
        return path.stat().st_size, getattr(tiff, "n_frames", 1), tiff.width


def test_event_adapter_reads_repeated_file_names() -> None:
    event = Message(
        {
            "Event": "ReceiveFAX",
            "Uniqueid": "1700000000.7",
            "Channel": "Local/fax@hotline-action-00000001;2",
            "CallerIDNum": "13900001111",
            "RemoteStationID": " citizen ",
            "PagesTransferred": "2",
            "FileName": ["/r/fax/a.tif", "/r/fax/b.tif"],
        }
    )
    fax = received_fax(event)
    assert fax.files == ("/r/fax/a.tif", "/r/fax/b.tif")
    assert (fax.pages, fax.caller_number, fax.remote_station_id) == (2, "13900001111", "citizen")
    assert fax.description == "fax of 2 pages received"
    anonymous = received_fax(Message({"Event": "ReceiveFAX", "CallerIDNum": "<unknown>"}))
    assert anonymous.caller_number is None and anonymous.pages == 0 and anonymous.files == ()


SENDER = "fax-test-sender"


def add_dialplan(hotline: Hotline, lines: list[str]) -> None:
    """A test-only context added through the CLI (nothing written to the shipped config); the
    fax machine's key press is AMI PlayDTMF (app_senddtmf, loaded for the ACD's waits)."""
    assert hotline.asterisk is not None
    for line in lines:
        done = hotline.asterisk.cli(f'dialplan add extension "{line}" into {SENDER} replace')
        assert done.returncode == 0, done.stderr or done.stdout


async def channel_status(hotline: Hotline, uniqueid: str) -> Message | None:
    events = await hotline.ami.action({"Action": "Status"}, as_list=True)
    return next((e for e in events if e.get("Uniqueid") == uniqueid), None)


async def test_fax_through_12345_and_key_5_becomes_one_fax_work_order(
    hotline: Hotline, ami_events: AmiEvents
) -> None:
    recordings = hotline.settings.recordings_dir
    outbox = recordings / "fax-test-outbox"
    outbox.mkdir(exist_ok=True)
    tiff = fax_tiff(outbox / "two-pages.tif", pages=2)
    await asyncio.to_thread(
        add_dialplan, hotline,
        ["wait,1,Wait(300)", f"send,1,SendFAX({tiff})", "send,2,Hangup()"],
    )  # fmt: skip
    caller = new_caller()
    machine, citizen = f"fax-{uuid.uuid4().hex[:10]}", f"citizen-{uuid.uuid4().hex[:10]}"
    library = PromptLibrary(hotline.settings.prompts_dir, hotline.menu.voices)
    main_menu = library.path_for(hotline.menu.nodes["main"].prompt.prompt("zh")).stem

    await hotline.ami.action(
        {
            "Action": "Originate",
            "Channel": f"Local/{hotline.settings.hotline_number}@hotline",
            "Context": SENDER, "Exten": "wait", "Priority": "1",
            "CallerID": f'"{caller}" <{caller}>',
            "ChannelId": machine, "OtherChannelId": citizen,
            "Async": "true",
        }
    )  # fmt: skip

    async def at_main_menu() -> bool:  # the language choice timed out: Mandarin
        return any(
            main_menu in (e.get("CommandLine", "") or e.get("Command", ""))
            for e in ami_events.of(citizen, "AGIExecStart")
        )

    await eventually(at_main_menu, timeout_s=60, what="the main menu")
    await hotline.ami.action({"Action": "PlayDTMF", "Channel": await _name(hotline, machine),
                              "Digit": "5", "Duration": "150"})  # fmt: skip

    async def receiving() -> bool:
        status = await channel_status(hotline, citizen)
        return status is not None and status.get("Context") == "hotline-action"

    await eventually(receiving, timeout_s=30, what="key 5 to reach hotline-action,fax")
    await hotline.ami.action({"Action": "Redirect", "Channel": await _name(hotline, machine),
                              "Context": SENDER, "Exten": "send", "Priority": "1"})  # fmt: skip

    async def order() -> WorkOrder | None:
        return await hotline.work_orders.by_call(citizen)

    received = await eventually(order, timeout_s=120, what="the fax work order")
    assert received.channel == "fax" and received.caller_phone == caller
    assert received.description == "fax of 2 pages received"
    attachment = Path(received.attachment_path)
    assert attachment.parent == recordings / "fax" and attachment.stem == citizen
    size, pages, width = tiff_facts(attachment)
    assert size > 0 and pages == 2 and width == 1728
    assert received.history[0].actor == "fax-intake"
    await asyncio.sleep(2)  # a second handler would have made its order by now
    faxes = [o for o in await hotline.work_orders.find(limit=500) if o.call_id == citizen]
    assert faxes == [received]


async def _name(hotline: Hotline, uniqueid: str) -> str:
    status = await eventually(lambda: channel_status(hotline, uniqueid), 10, uniqueid)
    return str(status.get("Channel"))
