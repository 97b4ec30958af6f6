"""Render the seats as Asterisk configuration.

* :func:`render_pjsip` — one endpoint, one auth and one AOR per seat, so any SIP softphone
  registers as that seat (username = extension, password given by the caller, usually
  ``hotline.secrets.stored_secret(data_dir, f"seat-{ext}")``). The AOR keeps one contact and
  replaces it on re-registration (``max_contacts=1`` wants ``remove_existing=yes``).
  With a ``registrar`` (Kamailio in front of several Asterisk boxes, :mod:`pbx.kamailio`)
  seats register there instead: the AOR's one static contact is the seat's user at the
  registrar, which relays the INVITE to wherever the seat registered, so any box rings any
  seat. The endpoint keeps its auth: a seat's own calls (feature codes) reach a box through
  Kamailio and are challenged by that box as before.
* :func:`render_queues` / :func:`render_queuerules` — the fallback when the engine or Redis is
  unreachable: one Asterisk ``Queue()`` per skill (``hotline-<skill>``) with the same seats as
  static members. The member penalty is the seat's level band (0 = best band), the strategy
  ``leastrecent`` (longest idle), and ``queuerules.conf`` widens the band over the wait as the
  ACD's relax steps do. Asterisk cannot express "any seat with the language": that step and
  the language constraint are the ACD's alone.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from agents.seats import Seat, SeatsFile
from queueing.rules import RoutingRules

QUEUE_PREFIX = "hotline-"
RELAX_RULE = "hotline-relax"
_SAFE = re.compile(r"^[A-Za-z0-9_.~+/=-]{8,128}$")


def _display(name: str) -> str:
    return name.replace('"', "").replace("\n", " ").strip()


def member_name(seat: Seat) -> str:
    """The seat's name in its native queues (their events and queue_log name it so)."""
    return _display(seat.name)


def render_pjsip(
    seats: SeatsFile,
    passwords: Mapping[str, str],
    *,
    context: str = "hotline-seats",
    codecs: tuple[str, ...] = ("alaw", "ulaw"),
    qualify_frequency_s: int = 30,
    rewrite_contact: bool = True,
    registrar: str = "",
) -> str:
    """PJSIP sections for every seat; ``passwords`` maps extension -> SIP password.

    ``rewrite_contact`` (on for softphones behind NAT) makes Asterisk reach a seat at the
    address its REGISTER came from, not at its Contact. ``registrar`` (``host:port``, empty:
    Asterisk itself) is where the seats register."""
    parts = ["; Rendered from the seats file by agents/pjsip.py: edit the seats file, not this.\n"]
    for seat in seats.seats:
        password = passwords.get(seat.extension)
        if password is None:
            raise ValueError(f"seat {seat.extension}: no SIP password given")
        if not _SAFE.match(password):
            raise ValueError(f"seat {seat.extension}: password must be 8-128 safe characters")
        ext = seat.extension
        contacts = (
            f"contact=sip:{ext}@{registrar}\n"
            if registrar
            else "max_contacts=1\nremove_existing=yes\n"
        )
        parts.append(
            f"[{ext}]\n"
            "type=endpoint\n"
            f"context={context}\n"
            "disallow=all\n"
            f"allow={','.join(codecs)}\n"
            f"auth={ext}-auth\n"
            f"aors={ext}\n"
            f'callerid="{_display(seat.name)}" <{ext}>\n'
            "dtmf_mode=rfc4733\n"
            "direct_media=no\n"
            "rtp_symmetric=yes\n"
            "force_rport=yes\n"
            f"rewrite_contact={'yes' if rewrite_contact else 'no'}\n"
            f"language={seat.languages[0]}\n"
            "\n"
            f"[{ext}-auth]\n"
            "type=auth\n"
            "auth_type=userpass\n"
            f"username={ext}\n"
            f"password={password}\n"
            "\n"
            f"[{ext}]\n"
            "type=aor\n"
            f"{contacts}"
            f"qualify_frequency={qualify_frequency_s}\n"
        )
    return "\n".join(parts)


def queue_name(skill: str) -> str:
    return f"{QUEUE_PREFIX}{skill}"


def render_queues(
    seats: SeatsFile,
    rules: RoutingRules,
    *,
    musicclass: str = "default",
    announce_frequency_s: int = 60,
) -> str:
    """``queues.conf`` with one queue per skill and the seats holding it as static members
    (penalty: the band of the seat's level in ``rules``, the ACD's own rules)."""
    out = ["; Fallback queues rendered from the seats file by agents/pjsip.py.\n"]
    out.append(
        "[general]\npersistentmembers=no\nautofill=yes\nshared_lastcall=yes\n"
        "log_membername_as_agent=yes\n"
    )
    for skill in seats.skills:
        wrap = skill.wrap_up_s if skill.wrap_up_s is not None else seats.wrap_up_s
        lines = [
            f"[{queue_name(skill.name)}]",
            f"; {skill.label}",
            "strategy=leastrecent",
            f"timeout={int(seats.ring_timeout_s)}",
            "retry=1",
            f"wrapuptime={int(wrap)}",
            "autopause=yes",
            "autopausebusy=no",
            "autopauseunavail=yes",
            "ringinuse=no",
            "joinempty=yes",
            "leavewhenempty=no",
            f"musicclass={musicclass}",
            "announce-position=yes",
            "announce-holdtime=yes",
            f"announce-frequency={announce_frequency_s}",
            "servicelevel=15",
            f"defaultrule={RELAX_RULE}",
        ]
        for seat in seats.seats:
            level = seat.skill_levels.get(skill.name)
            if level is None:
                continue
            penalty = rules.band_of(level)
            iface = f"PJSIP/{seat.extension}"
            lines.append(f"member => {iface},{penalty},{member_name(seat)},{iface}")
        out.append("\n".join(lines) + "\n")
    return "\n".join(out)


def render_queuerules(rules: RoutingRules) -> str:
    """``queuerules.conf``: the relax steps as QUEUE_MAX_PENALTY changes over the wait."""
    lines = ["; Rendered by agents/pjsip.py from the ACD's relax steps.", f"[{RELAX_RULE}]"]
    for step in rules.steps:
        if step.after_s == 0:
            continue
        max_band = rules.band_of(step.max_level)
        lines.append(f"penaltychange => {int(step.after_s)},{max_band},0")
    first = rules.band_of(rules.steps[0].max_level)
    header = f"; at 0 s: QUEUE_MAX_PENALTY={first} (set by the dialplan before Queue())"
    return "\n".join([lines[0], header, *lines[1:]]) + "\n"
