"""The carrier trunk's dial string, the one owner of ``callback_dial``'s format."""

from __future__ import annotations

import pytest

from hotline.settings import Settings, SettingsError
from pbx.outbound import OutboundDial


def test_the_number_goes_into_the_dial_string() -> None:
    dial = Settings(callback_dial="PJSIP/citizens/sip:{number}@10.0.0.1:5080").outbound_dial
    assert dial.channel("13900001111") == "PJSIP/citizens/sip:13900001111@10.0.0.1:5080"
    assert dial == OutboundDial("PJSIP/citizens/sip:{number}@10.0.0.1:5080")


@pytest.mark.parametrize("template", ["PJSIP/trunk/sip:13900001111@x", "PJSIP/{num}@x", "{0}"])
def test_a_dial_string_that_cannot_take_the_number_is_refused(template: str) -> None:
    with pytest.raises(SettingsError, match="callback_dial"):
        Settings(callback_dial=template).outbound_dial.channel("13900001111")
