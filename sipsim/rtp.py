"""An RTP end of a call on a socket of the test: it says a tone and hears which tones arrive.

Put its port in a sipp phone's SDP (``m=audio <port>``) instead of sipp's own media port:
Asterisk sends the call's audio here. Asterisk's endpoints use symmetric RTP, so the phone
answers everyone who sent to it (each call on that port) with a steady tone of ``says_hz``
(PCMU, 20 ms packets), from the first packet on. Each packet received is checked
(Goertzel) for the tones in ``listens_for``: a packet *carries* a tone when that frequency
holds a good share of its energy, so a test tells apart who is heard (say the caller at
400 Hz, the seat at 600 Hz, the supervisor at 1000 Hz).
"""

from __future__ import annotations

import asyncio
import math
import struct
from collections import Counter
from collections.abc import Sequence
from typing import cast

RATE = 8000
FRAME = 160  # samples in 20 ms
SHARE = 0.15  # of a packet's energy at one frequency: that tone is in it
QUIET = 50.0  # RMS below which a packet is silence


def _ulaw_decode(byte: int) -> int:
    u = ~byte & 0xFF
    exponent, mantissa = (u >> 4) & 7, u & 0x0F
    sample = (((mantissa << 3) + 0x84) << exponent) - 0x84
    return -sample if u & 0x80 else sample


def _ulaw_encode(sample: int) -> int:
    sign = 0x80 if sample < 0 else 0
    magnitude = min(abs(sample), 32635) + 0x84
    exponent = 7
    while exponent and not magnitude & (0x4000 >> (7 - exponent)):
        exponent -= 1
    mantissa = (magnitude >> (exponent + 3)) & 0x0F
    return ~(sign | exponent << 4 | mantissa) & 0xFF


DECODE = [_ulaw_decode(b) for b in range(256)]


def tone_frame(hz: float, amplitude: int = 8000) -> bytes:
    """20 ms of a tone as PCMU (whole cycles for multiples of 50 Hz: frames join smoothly)."""
    return bytes(
        _ulaw_encode(int(amplitude * math.sin(2 * math.pi * hz * i / RATE))) for i in range(FRAME)
    )


def share(samples: Sequence[int], hz: float) -> float:
    """The part of the samples' energy at ``hz`` (Goertzel; about 1 for a pure tone)."""
    n = len(samples)
    energy = sum(x * x for x in samples)
    if not n or not energy:
        return 0.0
    coeff = 2 * math.cos(2 * math.pi * hz / RATE)
    s1 = s2 = 0.0
    for x in samples:
        s1, s2 = x + coeff * s1 - s2, s1
    power = s1 * s1 + s2 * s2 - coeff * s1 * s2
    return power / (n / 2 * energy)


class RtpPhone(asyncio.DatagramProtocol):
    def __init__(self, says_hz: float | None, listens_for: Sequence[float]) -> None:
        self.frame = tone_frame(says_hz) if says_hz else b""
        self.listens_for = tuple(listens_for)
        self.packets = 0  # received
        self.heard: Counter[float] = Counter()  # packets carrying each tone
        self.peers: set[tuple[str, int]] = set()
        self._transport: asyncio.DatagramTransport | None = None
        self._speaking: asyncio.Task[None] | None = None

    @property
    def port(self) -> int:
        assert self._transport is not None
        return int(self._transport.get_extra_info("sockname")[1])

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        if len(data) <= 12 or data[0] >> 6 != 2 or data[1] & 0x7F != 0:  # PCMU RTP only
            return
        self.packets += 1
        self.peers.add(addr)
        if self.frame and self._speaking is None:
            self._speaking = asyncio.get_running_loop().create_task(self._speak())
        samples = [DECODE[b] for b in data[12:]]
        if math.sqrt(sum(x * x for x in samples) / len(samples)) < QUIET:
            return
        for hz in self.listens_for:
            if share(samples, hz) > SHARE:
                self.heard[hz] += 1

    async def _speak(self) -> None:
        seq, stamp = 0, 0
        while self._transport is not None:
            header = struct.pack("!BBHII", 0x80, 0, seq & 0xFFFF, stamp & 0xFFFFFFFF, 0x12345)
            for peer in self.peers:
                self._transport.sendto(header + self.frame, peer)
            seq, stamp = seq + 1, stamp + FRAME
            await asyncio.sleep(FRAME / RATE)

    def close(self) -> None:
        if self._speaking is not None:
            self._speaking.cancel()
        if self._transport is not None:
            self._transport.close()
            self._transport = None


async def open_phone(says_hz: float | None, listens_for: Sequence[float]) -> RtpPhone:
    """An :class:`RtpPhone` on a free loopback port."""
    _, phone = await asyncio.get_running_loop().create_datagram_endpoint(
        lambda: RtpPhone(says_hz, listens_for), local_addr=("127.0.0.1", 0)
    )
    return phone
