"""RFC 4733 DTMF as pcap files for sipp's ``play_pcap_audio``.

sip-tester's bundled ``dtmf_2833_N.pcap`` files all carry the same RTP timestamp, so
Asterisk takes a second key press from them as a repeat of the first and drops it. Here
each key of a sequence is its own event with a fresh timestamp, and each file has its own
SSRC and sequence numbers, so any number of presses reach the IVR.
"""

from __future__ import annotations

import random
import struct
from pathlib import Path

_EVENT_CODES = {**{str(d): d for d in range(10)}, "*": 10, "#": 11}
_PACKET_MS = 20
_TONE_PACKETS = 8  # 160 ms of tone
_PAYLOAD_TYPE = 101


def _frame(rtp: bytes) -> bytes:
    """Ethernet + IPv4 + UDP around one RTP packet (sipp only reads the UDP payload)."""
    udp = struct.pack("!HHHH", 4000, 4000, 8 + len(rtp), 0) + rtp
    ip = struct.pack(
        "!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0, 64, 17, 0,
        bytes([127, 0, 0, 1]), bytes([127, 0, 0, 1]),
    )  # fmt: skip
    return b"\x00" * 12 + b"\x08\x00" + ip + udp


def dtmf_packets(keys: str, gap_ms: int = 240) -> list[tuple[float, bytes]]:
    """(send time in seconds, frame) for every packet of the key sequence."""
    rng = random.Random()
    ssrc, seq, timestamp = rng.getrandbits(32), rng.randrange(1 << 15), rng.getrandbits(30)
    packets: list[tuple[float, bytes]] = []
    clock = 0.0
    for key in keys:
        code = _EVENT_CODES[key]
        for index in range(_TONE_PACKETS + 3):
            last = index >= _TONE_PACKETS
            duration = min(index, _TONE_PACKETS) * 160
            marker = 0x80 if index == 0 else 0
            event = struct.pack("!BBH", code, (0x80 if last else 0) | 10, duration)
            header = struct.pack("!BBHII", 0x80, marker | _PAYLOAD_TYPE, seq & 0xFFFF,
                                 timestamp & 0xFFFFFFFF, ssrc)  # fmt: skip
            packets.append((clock, _frame(header + event)))
            seq += 0 if last and index > _TONE_PACKETS else 1
            if not last:
                clock += _PACKET_MS / 1000
        clock += gap_ms / 1000
        timestamp += int((gap_ms + _TONE_PACKETS * _PACKET_MS) * 8)
        seq += 1
    return packets


def write_dtmf_pcap(path: Path, keys: str) -> Path:
    packets = dtmf_packets(keys)
    with open(path, "wb") as out:
        out.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        base = 1_700_000_000.0
        for at, frame in packets:
            seconds = base + at
            out.write(struct.pack("<IIII", int(seconds), int((seconds % 1) * 1e6),
                                  len(frame), len(frame)))  # fmt: skip
            out.write(frame)
    return path


def sequence_duration_ms(keys: str, gap_ms: int = 240) -> int:
    return len(keys) * (_TONE_PACKETS * _PACKET_MS + gap_ms)
