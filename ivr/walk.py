"""One caller's walk through the menu tree: a pure state machine, no I/O.

The FastAGI adapter plays each :class:`Ask`'s prompts, collects digits with its timeout,
feeds them to :meth:`Walk.answer`, and stops at a :class:`Finish`, whose route the dialplan
acts on. Every way out of the menu ends on a route: a silent or confused caller reaches the
operator, never a hangup — a silent one after ``max_no_input`` timeouts in a row (two by
default), wherever they fall, so nobody hears the main menu over and over.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ivr.menu import BACK_KEY, OPERATOR_KEY, REPEAT_KEY, Menu, MenuNode, Prompt, Route

__all__ = ["Ask", "Finish", "Prompt", "Route", "Step", "Walk", "WalkError"]


class WalkError(RuntimeError):
    """The adapter drove the walk out of order (e.g. answered after it finished)."""


@dataclass(frozen=True)
class Ask:
    """Play these prompts (interruptible by a key), then collect digits."""

    prompts: tuple[Prompt, ...]
    timeout_s: float
    max_digits: int
    terminator: str | None  # "#" for number entry, else None
    node: str  # node id, for the call record


@dataclass(frozen=True)
class Finish:
    """The menu is done: send the call to ``route``."""

    route: Route
    language: str
    reason: str  # "selected" | "no-input" | "invalid" | "operator"
    collected: str | None  # digits entered in a number-entry node, e.g. a work-order number
    node: str = ""  # the node the caller was in
    prompts: tuple[Prompt, ...] = field(default=())  # to play before routing ("transferring")


Step = Ask | Finish


class Walk:
    """State of one call in the menu: current node, the path back, failures, language."""

    def __init__(self, menu: Menu) -> None:
        self.menu = menu
        self.language = menu.default_language
        self.node = menu.start
        self.tries = 0  # failed tries (no input or invalid) at the current node
        self.silences = 0  # timeouts in a row, across nodes; a key resets it
        self.finished: Finish | None = None
        self._path: list[str] = []  # nodes to go back to with *
        self._started = False

    def start(self) -> Step:
        if self._started:
            raise WalkError("walk already started")
        self._started = True
        intro = tuple(self.menu.prompts[pid].prompt(self.language) for pid in self.menu.intro)
        return self._ask(intro)

    def answer(self, digits: str) -> Step:
        """Digits the caller entered for the last Ask; ``""`` if nothing before the timeout."""
        if not self._started:
            raise WalkError("answer() before start()")
        if self.finished is not None:
            raise WalkError("the walk has finished")
        node = self.menu.nodes[self.node]
        if not digits:
            return self._silence(node)
        self.silences = 0
        if node.entry is not None:
            return self._number_entry(node, digits)
        key = digits.rstrip("#")
        if not key:
            return self._fail("no-input")
        if key == OPERATOR_KEY:
            return self._finish(self.menu.operator_route, "operator")
        if key == REPEAT_KEY:
            return self._ask()
        if key == BACK_KEY:
            return self._back()
        option = node.option(key)
        if option is None:
            return self._fail("invalid")
        if option.language is not None:
            self.language = option.language
        if option.route is not None:
            return self._finish(option.route, "selected")
        if option.goto is not None:
            return self._enter(option.goto)
        return self._ask()  # only the language changed: the same node, in the new language

    # -- transitions ----------------------------------------------------------------------

    def _number_entry(self, node: MenuNode, digits: str) -> Step:
        assert node.entry is not None
        terminator = node.entry.terminator
        number = digits[:-1] if terminator and digits.endswith(terminator) else digits
        if number.startswith(BACK_KEY):
            return self._back()
        if not number:
            return self._fail("no-input")
        if not number.isdigit() or len(number) > node.entry.max_digits:
            return self._fail("invalid")
        return self._finish(node.entry.route, "selected", collected=number)

    def _enter(self, target: str) -> Step:
        self._path.append(self.node)
        self.node = target
        self.tries = 0
        return self._ask()

    def _back(self) -> Step:
        if self._path:
            self.node = self._path.pop()
            self.tries = 0
        return self._ask()

    def _silence(self, node: MenuNode) -> Step:
        self.silences += 1
        if self.silences >= self.menu.max_no_input:
            return self._finish(self.menu.operator_route, "no-input")
        if node.on_no_input is not None:
            return self._enter(node.on_no_input)
        return self._fail("no-input")

    def _fail(self, reason: str) -> Step:
        self.tries += 1
        if self.tries >= self.menu.max_tries:
            return self._finish(self.menu.operator_route, reason)
        if reason == "invalid":
            invalid = self.menu.prompts[self.menu.invalid_prompt].prompt(self.language)
            return self._ask((invalid,))
        return self._ask()

    def _finish(self, route: Route, reason: str, collected: str | None = None) -> Finish:
        prompts: tuple[Prompt, ...] = ()
        transfer = self.menu.transfer_prompt
        if route == self.menu.operator_route and transfer is not None:
            prompts = (self.menu.prompts[transfer].prompt(self.language),)
        self.finished = Finish(route, self.language, reason, collected, self.node, prompts)
        return self.finished

    def _ask(self, before: tuple[Prompt, ...] = ()) -> Ask:
        node = self.menu.nodes[self.node]
        if node.all_languages:
            order = (self.language, *(x for x in self.menu.languages if x != self.language))
            own = tuple(node.prompt.prompt(language) for language in order)
        else:
            own = (node.prompt.prompt(self.language),)
        entry = node.entry
        return Ask(
            prompts=before + own,
            timeout_s=node.timeout_s or self.menu.timeout_s,
            max_digits=entry.max_digits if entry else 1,
            terminator=entry.terminator if entry else None,
            node=node.id,
        )
