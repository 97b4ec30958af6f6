"""A scripted FastAGI channel: the engine's routes driven without Asterisk.

:class:`FakeChannel` implements :class:`pbx.agi_channel.AgiChannel`. The test writes the
script of one call: each step is an AGI operation the route is expected to perform next
(:func:`command`, :func:`get_data`, :func:`stream`, :func:`set_variable`,
:func:`get_variable`) with what the caller's side answers (the keys pressed, Asterisk's
result), or :func:`hang_up` (every later operation raises ``CallerHungUp``, as Asterisk's
511 does). An operation the script does not expect fails at once with the step expected and
what the route did so far (:class:`ScriptError`, also kept for :meth:`FakeChannel.check`, in
case the route swallows it); :meth:`FakeChannel.check` also fails if steps are left over.
A route may end the conversation early (``release()``, noted in :attr:`FakeChannel.done`);
any operation after it fails.

A ``repeat`` step (a poll: ``WAIT FOR DIGIT 100``) matches any number of times until the
route performs the operation of the step after it (:func:`polls` scripts an exact number).
``then`` runs when a step is reached, before the reply: what happens outside the channel
meanwhile (a seat answers, a DialEnd event arrives); ``delay_s`` is how long the operation
takes on the caller's side. :func:`wake` is Asterisk receiving a digit queued by the engine
(AMI PlayDTMF Receive): it ends the channel's running ``WAIT FOR DIGIT`` at once.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from calls.callerid import parse_caller_id
from pbx.agi_channel import AgiCall, CallerHungUp

Hook = Callable[[], Awaitable[None] | None]
Matcher = str | re.Pattern[str] | None  # exact text, a pattern to fullmatch, or anything


@dataclass(frozen=True)
class Step:
    op: str  # command | get_data | stream | set_variable | get_variable | hang_up
    what: Matcher = None  # the command, the variable's name, or the files (joined by " ")
    value: Matcher = None  # set_variable: the value
    reply: Any = None  # command: (result, data); get_data: the keys; get_variable: the value
    repeat: bool = False
    then: Hook | None = None
    delay_s: float = 0.0

    def matches(self, op: str, what: str, value: str | None) -> bool:
        return op == self.op and _fits(self.what, what) and _fits(self.value, value)

    def __str__(self) -> str:
        shown = [repr(m.pattern if isinstance(m, re.Pattern) else m)
                 for m in (self.what, self.value) if m is not None]  # fmt: skip
        return f"{self.op}({', '.join(shown)}){' repeated' if self.repeat else ''}"


def _fits(matcher: Matcher, text: str | None) -> bool:
    if matcher is None:
        return True
    if text is None:
        return False
    if isinstance(matcher, re.Pattern):
        return matcher.fullmatch(text) is not None
    return matcher == text


def command(
    text: Matcher,
    reply: tuple[str, str] = ("0", ""),
    *,
    repeat: bool = False,
    then: Hook | None = None,
    delay_s: float = 0.0,
) -> Step:
    """A raw AGI command (``SET MUSIC ON default``, ``EXEC Dial ...``) and Asterisk's answer;
    ``("49", "")`` after a ``CONTROL STREAM FILE`` or ``WAIT FOR DIGIT`` is the key 1."""
    return Step("command", text, reply=reply, repeat=repeat, then=then, delay_s=delay_s)


def get_data(
    keys: str,
    files: Sequence[str] | None = None,
    *,
    repeat: bool = False,
    then: Hook | None = None,
) -> Step:
    """Prompts played (``files``, in order; None: any) and the keys the caller presses
    (``""``: silence until the timeout)."""
    what = None if files is None else " ".join(files)
    return Step("get_data", what, reply=keys, repeat=repeat, then=then)


def stream(files: Sequence[str] | None = None) -> Step:
    """Files played to their end (None: any)."""
    return Step("stream", None if files is None else " ".join(files))


def set_variable(name: str, value: Matcher = None) -> Step:
    return Step("set_variable", name, value)


def get_variable(name: str, reply: str = "") -> Step:
    return Step("get_variable", name, reply=reply)


WAIT = re.compile(r"WAIT FOR DIGIT \d+")  # the queue's wait for a key (any length)


def polls(count: int, text: Matcher = WAIT, delay_s: float = 0.1) -> list[Step]:
    """``count`` polls for a key in which the caller presses nothing."""
    return [command(text, delay_s=delay_s) for _ in range(count)]


def hang_up() -> Step:
    """The caller hangs up: this operation and every later one raise ``CallerHungUp``."""
    return Step("hang_up")


def agi_call(
    uniqueid: str = "1800000000.1",
    *,
    caller: str = "13900001111",
    channel: str = "PJSIP/citizens-00000001",
    dialed: str = "12345",
    script: str = "ivr",
    args: tuple[str, ...] = (),
) -> AgiCall:
    """The headers of one call, as :meth:`AgiCall.from_headers` would type them."""
    return AgiCall(uniqueid, channel, parse_caller_id(caller), dialed, script, args)


_LIVE: dict[str, FakeChannel] = {}  # the latest FakeChannel by channel name


async def wake(channel: str, digit: str, _who: str = "") -> None:
    """Asterisk receives ``digit`` on ``channel``: a running WAIT FOR DIGIT returns it (the
    engine's WakeCaller); at any other moment the digit goes unheard, as on a real channel."""
    fake = _LIVE.get(channel)
    if fake is not None:
        fake.woken.append(digit)
        if fake._waiting is not None and not fake._waiting.done():
            fake._waiting.set_result(digit)


class ScriptError(AssertionError):
    """The route did something the call's script did not expect."""


@dataclass
class FakeChannel:
    """One scripted call (see the module's docstring)."""

    call: AgiCall
    script: list[Step]
    done: list[str] = field(default_factory=list)  # every operation performed, in order
    failures: list[ScriptError] = field(default_factory=list)
    woken: list[str] = field(default_factory=list)  # digits queued by wake()
    hung_up: bool = False
    released: bool = False  # the route ended the AGI conversation (release())
    _next: int = 0
    _waiting: asyncio.Future[str] | None = None  # the running WAIT FOR DIGIT

    def __post_init__(self) -> None:
        _LIVE[self.call.channel] = self
        for step, following in zip(self.script, self.script[1:], strict=False):
            if step.repeat and following.op == "hang_up":
                raise ValueError("a hang_up() after a repeated step would never come: "
                                 "script the polls one by one (polls(n))")  # fmt: skip

    # -- the AgiChannel protocol ------------------------------------------------------------
    async def command(self, command: str, deadline_s: float | None = None) -> tuple[str, str]:
        reply: tuple[str, str] = await self._perform("command", command)
        return reply

    async def get_data(self, files: list[str], timeout_s: float, max_digits: int) -> str:
        keys: str = await self._perform("get_data", " ".join(files))
        if len(keys.rstrip("#")) > max_digits:
            self._fail(f"get_data(max_digits={max_digits}) cannot return {keys!r}")
        return keys

    async def stream(self, files: list[str], *, barge_in: bool = False) -> None:
        await self._perform("stream", " ".join(files))

    async def set_variable(self, name: str, value: str) -> None:
        await self._perform("set_variable", name, value)

    async def get_variable(self, name: str) -> str:
        value: str = await self._perform("get_variable", name)
        return value

    def release(self) -> None:
        self.done.append("release")
        self.released = True

    # -- the script -------------------------------------------------------------------------
    def check(self) -> None:
        """The route did what the script said, all of it."""
        if self.failures:
            raise self.failures[0]
        left = [s for s in self.script[self._next :] if not s.repeat and s.op != "hang_up"]
        if left:
            raise ScriptError(
                f"the route stopped before the script's end; still expected: "
                f"{', '.join(map(str, left))}\n{self._history()}"
            )

    def operations(self, op: str) -> list[str]:
        """The arguments of every ``op`` performed (e.g. every command sent)."""
        return [line.partition(" ")[2] for line in self.done if line.startswith(op + " ")]

    async def _perform(self, op: str, what: str, value: str | None = None) -> Any:
        self.done.append(f"{op} {what}" + ("" if value is None else f" = {value}"))
        if self.released:
            self._fail(f"{self.done[-1]!r} after the route released the channel")
        if self.hung_up:
            raise CallerHungUp("the caller hung up (scripted)")
        step = self._step(op, what, value)
        if step.op == "hang_up":
            self.hung_up = True
            raise CallerHungUp("the caller hung up (scripted)")
        if step.then is not None:
            result = step.then()
            if result is not None:
                await result
        if op == "command" and what.startswith("WAIT FOR DIGIT "):
            woken = self._waiting = asyncio.get_running_loop().create_future()
            try:
                digit = await asyncio.wait_for(woken, step.delay_s)
            except TimeoutError:
                return step.reply
            finally:
                self._waiting = None
            return (str(ord(digit)), "")
        await asyncio.sleep(step.delay_s)
        return step.reply

    def _step(self, op: str, what: str, value: str | None) -> Step:
        while self._next < len(self.script):
            step = self.script[self._next]
            if step.repeat:
                following = self.script[self._next + 1 : self._next + 2]
                if following and following[0].matches(op, what, value):
                    self._next += 1  # the poll is over
                    continue
                if step.matches(op, what, value):
                    return step
            elif step.op == "hang_up" or step.matches(op, what, value):
                self._next += 1
                return step
            self._fail(f"unexpected {self.done[-1]!r}; the script expected {step}")
        self._fail(f"unexpected {self.done[-1]!r} after the end of the script")
        raise AssertionError("unreachable")

    def _fail(self, problem: str) -> None:
        error = ScriptError(f"call {self.call.uniqueid}: {problem}\n{self._history()}")
        self.failures.append(error)
        raise error

    def _history(self) -> str:
        return "operations so far:\n  " + "\n  ".join(self.done)
