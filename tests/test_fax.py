"""Fax intake end to end: Asterisk's own SendFAX, from a Local channel into the hotline's
``hotline-action,fax`` extension (ReceiveFAX), res_fax's ReceiveFAX event, a work order of
channel "fax" with the TIFF attached."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import eventually, new_caller
from panoramisk.message import Message
from PIL import Image, ImageDraw

from hotline.engine import Hotline
from intake.fax import FaxIntake, received_fax
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


async def test_sendfax_through_asterisk_becomes_a_fax_work_order(hotline: Hotline) -> None:
    recordings = hotline.settings.recordings_dir
    outbox = recordings / "fax-test-outbox"
    outbox.mkdir(exist_ok=True)
    tiff = fax_tiff(outbox / "two-pages.tif", pages=2)
    intake = FaxIntake(hotline.work_orders)
    hotline.ami.on("ReceiveFAX", intake.on_event)  # the engine registers the same handler
    caller = new_caller()

    await hotline.ami.action(
        {
            "Action": "Originate",
            "Channel": "Local/fax@hotline-action",
            "Application": "SendFAX",
            "Data": str(tiff),
            "CallerID": f'"{caller}" <{caller}>',
            "Async": "true",
        }
    )

    async def order() -> WorkOrder | None:
        found = await hotline.work_orders.find(limit=200)
        return next((o for o in found if o.caller_phone == caller and o.channel == "fax"), None)

    received = await eventually(order, timeout_s=90, what="the fax work order")
    assert received.channel == "fax"
    assert received.description == "fax of 2 pages received"
    attachment = Path(received.attachment_path)
    assert attachment.parent == recordings / "fax"
    size, pages, width = tiff_facts(attachment)
    assert size > 0 and pages == 2 and width == 1728
    assert received.call_id and attachment.stem == received.call_id
    assert received.history[0].actor == "fax-intake"
