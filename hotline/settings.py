"""Typed settings in layers: defaults, then a TOML file, then ``HOTLINE_*`` environment.

The file is ``$HOTLINE_CONFIG`` if set, else ``hotline.toml`` in the working directory if it
exists. Every field can be overridden by ``HOTLINE_<FIELD>`` (upper case), e.g.
``HOTLINE_SIP_PORT=5070``. Secrets are never defaults: see :mod:`hotline.secrets`.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path

from pbx.outbound import OutboundDial

PROJECT_DIR = Path(__file__).resolve().parent.parent


class SettingsError(ValueError):
    """A settings file or variable that cannot be used, with the reason."""


def _default_cache() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "hotline12345"


@dataclass(frozen=True)
class Settings:
    # Where state lives: database file, generated secrets, prompts, the Asterisk instance.
    data_dir: Path = PROJECT_DIR / "var"
    # The Asterisk 22 root built once from Debian sid and reused (outside the repository).
    asterisk_cache_dir: Path = field(default_factory=_default_cache)
    debian_mirror: str = "http://deb.debian.org/debian"
    recordings_dir: Path = PROJECT_DIR / "recordings"
    menu_file: Path = PROJECT_DIR / "ivr" / "menu.toml"
    # Operator seats (extensions, skills, PINs): rendered into PJSIP and queues.conf.
    seats_file: Path = PROJECT_DIR / "agents" / "seats.toml"

    hotline_number: str = "12345"
    # Networks whose calls are citizens' calls (the carrier trunk; loopback on one machine).
    citizen_networks: str = "127.0.0.0/8"
    # A caller waiting longer than this in one queue is offered to the operator queue again.
    queue_max_wait_s: int = 1800
    # The ACD: Redis key prefix (one connector engine per prefix), how often a waiting
    # caller hears position and estimated wait, when the callback is offered (0: never).
    acd_prefix: str = "hotline:acd:"
    queue_announce_interval_s: float = 45.0
    # The longest wait in the engine's queue; then the overflow: the native Queue() (0: none).
    acd_max_wait_s: float = 600.0
    callback_offer_after_s: float = 90.0
    # How the engine calls a citizen back: {number} is the caller's number.
    callback_dial: str = "PJSIP/citizens/sip:{number}@127.0.0.1"
    # Numbers an operator may hand a caller over to (queueing/transfer.py), dialled through
    # callback_dial (the carrier trunk): police, fire, ambulance, traffic accidents. How long
    # a transfer rings the other side before the caller returns to the operator queue.
    emergency_numbers: str = "110,119,120,122"
    transfer_ring_s: int = 60
    # A callback the citizen does not answer (their phone rang this long) is booked again
    # this many times, so far apart, then listed as failed for the supervisors
    # (GET /api/callbacks/failed).
    callback_ring_s: int = 30
    callback_retries: int = 2
    callback_retry_interval_s: float = 600.0
    # Numbers a caller may be called back on (a regular expression matching the whole
    # number): mainland mobiles and fixed lines, never international (00, +) or premium.
    callback_number_pattern: str = r"(?!1900)1[3-9]\d{9}|(?:0[1-9]\d{1,2})?[2-8]\d{6,7}"
    # Revisit calls (revisit/): the first call the next working day (or at once: as soon as
    # calling hours allow), local calling hours and days ("working": the holiday calendar's
    # working days, or "all"), retries, and how many revisit calls may ring at one time.
    revisit_at_once: bool = False
    revisit_calls: bool = True  # false: revisits are scheduled and listed, none is called
    revisit_calling_hours: str = "09:00-20:00"
    revisit_calling_days: str = "working"
    revisit_max_attempts: int = 3
    revisit_retry_interval_s: float = 7200.0
    revisit_concurrency: int = 4
    revisit_ring_s: int = 30
    revisit_tick_s: float = 2.0
    # Statistics: "answered within" for the service level (GB/T 33358: 15 s).
    service_level_s: float = 15.0
    # The supervisor's wallboard colours a queue and raises an alert past these thresholds.
    wallboard_longest_wait_alert_s: float = 60.0
    wallboard_service_level_alert: float = 0.80  # service level below this (0..1)
    # The bearer token a Prometheus scraper sends to /metrics (empty: generated once and
    # kept in data_dir/secrets.toml as metrics_token).
    metrics_token: str = ""
    # How often (s) Asterisk checks a seat's softphone (0: never; registration alone counts).
    seat_qualify_s: int = 30
    # Reach a seat where its REGISTER came from (softphones behind NAT), not at its Contact.
    seat_rewrite_contact: bool = True
    # Start and stop the local Asterisk instance with `hotline up` (off for a remote PBX).
    manage_asterisk: bool = True

    sip_host: str = "127.0.0.1"
    sip_port: int = 5060
    # Asterisk's system name: the prefix of its call ids, which key the shared database's
    # records, so each box behind Kamailio needs a name of its own.
    asterisk_name: str = "hotline12345"
    # Several Asterisk boxes behind one Kamailio (pbx/kamailio.py). kamailio_host empty: one
    # box, seats register with Asterisk. Set: Kamailio at kamailio_host:kamailio_port is the
    # citizens' SIP address and the seats' registrar, and this Asterisk rings a seat through
    # it. kamailio_boxes: the Asterisk SIP addresses (host:port, comma separated) Kamailio
    # spreads calls over (empty: sip_host:sip_port), each probed every kamailio_probe_s.
    kamailio_host: str = ""
    kamailio_port: int = 5060
    kamailio_boxes: str = ""
    kamailio_probe_s: int = 2
    # `hotline up` also provisions, starts and stops that Kamailio (on the box that runs it).
    manage_kamailio: bool = False
    rtp_port_start: int = 10000
    rtp_port_end: int = 10999
    ami_host: str = "127.0.0.1"
    ami_port: int = 5038
    ami_user: str = "hotline"
    ami_secret: str = ""  # empty: generated once and kept in data_dir/secrets.toml
    # AMI events sent to the engine besides its own (hotline.wiring.AMI_EVENTS), comma-separated
    ami_extra_events: str = ""
    agi_host: str = "127.0.0.1"  # loopback: only the local Asterisk reaches the FastAGI server
    agi_port: int = 4573
    agi_secret: str = ""  # empty: generated once and kept in data_dir/secrets.toml
    web_host: str = "127.0.0.1"
    web_port: int = 8345
    # Empty: the hotline's own Redis (queueing/redis_server.py), started and stopped with
    # `hotline up` on 127.0.0.1:redis_port, password in data_dir/secrets.toml, AOF on.
    redis_url: str = ""
    redis_port: int = 6390
    database_url: str = ""  # empty: SQLite file in data_dir

    # Open311 api keys, comma separated; empty: one key generated into data_dir/secrets.toml.
    open311_api_keys: str = ""
    open311_jurisdiction_id: str = ""
    # The hand-made staff tokens of earlier versions ([[staff]] token/name/role/department;
    # empty: data_dir/staff.toml): imported once as accounts at start, then renamed *.imported.
    staff_file: str = ""
    # Browser sessions (the login page): how long one lasts, and cookies for HTTPS only
    # (set it when a TLS proxy serves the pages).
    session_ttl_min: float = 480.0
    session_cookie_secure: bool = False
    # While no account exists, start makes admin, lead (supervisor) and op<first seat>
    # (operator) with passwords generated into data_dir/secrets.toml (accounts/first_start.py).
    first_accounts: bool = True
    supervision_interval_s: float = 300.0
    # An SMS from a number with an order opened by SMS within this window is added to it.
    sms_followup_window_h: float = 72.0

    # E-mail to departments (the department portal's news: new orders, urgings) through an
    # SMTP gateway; empty host: no e-mail. Addresses: the [department] table of
    # department_mail_file (empty: data_dir/department-mail.toml), e.g. "市水务集团" = "a@b.c".
    # A failed send is retried mail_retries times, mail_retry_interval_s apart.
    smtp_host: str = ""
    smtp_port: int = 25
    smtp_from: str = "12345@localhost"
    department_mail_file: str = ""
    mail_retries: int = 5
    mail_retry_interval_s: float = 60.0
    # SMS to departments (the same news) through the carrier's HTTP gateway: a signed JSON
    # POST to department_sms_url (empty: no SMS) per number; numbers: the [department] table
    # of department_sms_file (empty: data_dir/department-sms.toml), a number or a list each.
    # Retried like the e-mail (mail_retries, mail_retry_interval_s).
    department_sms_url: str = ""
    department_sms_file: str = ""

    # Any Vosk model directory (Mandarin in production: vosk-model-cn-0.22 or
    # vosk-model-small-cn-0.22); empty: calls are recorded, not transcribed (logged at start).
    vosk_model_dir: str = ""
    # Transcription runs as jobs on the hotline's Redis (speech/jobs.py), done by `hotline
    # worker` processes on any machine that reaches Redis and the recordings folder.
    # `hotline up` starts transcription_workers of them itself unless
    # transcription_local_workers is false (remote workers only). A worker killed mid-job has
    # its job taken again within transcription_lease_s.
    transcription_workers: int = 1
    transcription_local_workers: bool = True
    transcription_lease_s: float = 20.0
    # How long intake waits for a call's two sides before drafting it without transcript
    # (the jobs stay queued; raise it where workers may lag behind, e.g. draining a backlog).
    transcription_timeout_s: float = 600.0
    # Live transcription (intake/live.py): with a model, each connected call's two sides are
    # streamed by AudioSocket to the engine's server on audiosocket_host:audiosocket_port
    # (where the local Asterisk reaches it) and transcribed while the call runs; the
    # recording is transcribed after hangup only when streaming was off or failed.
    live_transcription: bool = True
    audiosocket_host: str = "127.0.0.1"
    audiosocket_port: int = 4599
    recording_retention_days: int = 180  # 0 keeps recordings forever

    # Deadline for every network await (AMI actions, Redis, database checks).
    network_timeout_s: float = 5.0
    log_level: str = "INFO"

    @property
    def prompts_dir(self) -> Path:
        return self.data_dir / "prompts"

    @property
    def moh_dir(self) -> Path:
        return self.data_dir / "moh"

    @property
    def kamailio_dir(self) -> Path:
        """The Kamailio this data folder provisions: its rendered config, pid and log."""
        return self.data_dir / "kamailio"

    @property
    def asterisk_dir(self) -> Path:
        """This instance's Asterisk: an overlay of the cached root, config rendered into it."""
        return self.data_dir / "asterisk"

    @property
    def effective_staff_file(self) -> Path:
        return Path(self.staff_file) if self.staff_file else self.data_dir / "staff.toml"

    @property
    def outbound_dial(self) -> OutboundDial:
        """The one way to dial a number outside (callbacks, revisits, transfers)."""
        try:
            return OutboundDial(self.callback_dial)
        except ValueError as exc:
            raise SettingsError(str(exc)) from exc

    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite+aiosqlite:///{self.data_dir / 'hotline.db'}"

    def replace(self, **changes: object) -> Settings:
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]

    @classmethod
    def load(cls, file: Path | None = None, environ: Mapping[str, str] | None = None) -> Settings:
        environ = os.environ if environ is None else environ
        values: dict[str, object] = {}
        if file is None and environ.get("HOTLINE_CONFIG"):
            file = Path(environ["HOTLINE_CONFIG"])
        elif file is None and Path("hotline.toml").is_file():
            file = Path("hotline.toml")
        if file is not None:
            try:
                values.update(tomllib.loads(file.read_text(encoding="utf-8")))
            except (OSError, tomllib.TOMLDecodeError) as exc:
                raise SettingsError(f"settings file {file}: {exc}") from exc
        for f in fields(cls):
            env_name = f"HOTLINE_{f.name.upper()}"
            if env_name in environ:
                values[f.name] = environ[env_name]
        return cls.from_dict(values)

    @classmethod
    def from_dict(cls, values: Mapping[str, object]) -> Settings:
        """Settings from raw values (strings from a file or the environment are coerced)."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise SettingsError(f"unknown setting(s): {', '.join(unknown)}")
        hints = typing.get_type_hints(cls)
        coerced = {name: _coerce(name, hints[name], raw) for name, raw in values.items()}
        return cls(**coerced)  # type: ignore[arg-type]

    def to_environ(self) -> dict[str, str]:
        """Every field as ``HOTLINE_<FIELD>`` variables: :meth:`load` reads them back."""
        return {
            f"HOTLINE_{name.upper()}": str(value).lower() if isinstance(value, bool) else str(value)
            for name, value in self.to_dict().items()
        }

    def to_dict(self) -> dict[str, str | int | float | bool]:
        """Every field as plain JSON values (paths as strings): :meth:`from_dict` reads them."""
        return {
            f.name: str(value) if isinstance(value, Path) else value
            for f in fields(self)
            for value in [getattr(self, f.name)]
        }


def _coerce(name: str, kind: object, raw: object) -> object:
    try:
        if kind is Path:
            return Path(str(raw)).expanduser()
        if kind is int:
            return int(raw)  # type: ignore[call-overload]
        if kind is float:
            return float(raw)  # type: ignore[arg-type]
        if kind is bool:
            return str(raw).lower() in {"1", "true", "yes", "on"}
        if isinstance(kind, types.UnionType):
            return raw
        return str(raw)
    except (TypeError, ValueError) as exc:
        raise SettingsError(f"setting {name}: cannot use {raw!r}: {exc}") from exc
