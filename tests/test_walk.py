"""The walk through the default menu, driven as the FastAGI adapter drives it."""

from __future__ import annotations

from pathlib import Path

import pytest

from ivr.menu import Menu, load_menu, parse_menu
from ivr.walk import Ask, Finish, Step, Walk, WalkError

DEFAULT_MENU = Path(__file__).resolve().parent.parent / "ivr" / "menu.toml"


@pytest.fixture(scope="module")
def menu() -> Menu:
    return load_menu(DEFAULT_MENU)


def ask(step: Step) -> Ask:
    assert isinstance(step, Ask), step
    return step


def finish(step: Step) -> Finish:
    assert isinstance(step, Finish), step
    return step


def ids(step: Step) -> list[tuple[str, str]]:
    return [(p.id, p.language) for p in ask(step).prompts]


def at_main(menu: Menu, language_key: str = "1") -> Walk:
    walk = Walk(menu)
    walk.start()
    assert ask(walk.answer(language_key)).node == "main"
    return walk


def test_start_plays_welcome_and_emergency_before_the_language_choice(menu: Menu) -> None:
    first = ask(Walk(menu).start())
    assert ids(first) == [
        ("welcome", "zh"),
        ("emergency", "zh"),
        ("language", "zh"),
        ("language", "en"),
    ]
    assert first.prompts[0].text == "欢迎致电一二三四五热线。"
    assert first.node == "language"
    assert first.timeout_s == 5 and first.max_digits == 1 and first.terminator is None


def test_key_1_routes_to_the_report_queue(menu: Menu) -> None:
    walk = at_main(menu)
    done = finish(walk.answer("1"))
    assert str(done.route) == "queue:report" and done.route.kind == "queue"
    assert (done.reason, done.language, done.collected, done.node) == (
        "selected",
        "zh",
        None,
        "main",
    )
    assert done.prompts == ()
    with pytest.raises(WalkError):
        walk.answer("1")


@pytest.mark.parametrize(
    ("key", "route"),
    [("2", "queue:consultation"), ("4", "queue:business"), ("5", "action:fax")],
)
def test_other_main_menu_routes(menu: Menu, key: str, route: str) -> None:
    assert str(finish(at_main(menu).answer(key)).route) == route


def test_timeout_at_language_choice_keeps_mandarin(menu: Menu) -> None:
    walk = Walk(menu)
    walk.start()
    step = ask(walk.answer(""))
    assert ids(step) == [("main", "zh")]
    assert walk.language == "zh"


def test_two_no_inputs_in_a_row_end_on_the_operator(menu: Menu) -> None:
    walk = at_main(menu)
    assert ids(walk.answer("")) == [("main", "zh")]
    done = finish(walk.answer(""))
    assert done.route == menu.operator_route
    assert done.reason == "no-input"
    assert [p.id for p in done.prompts] == ["transfer"]


def test_a_silent_caller_hears_the_main_menu_once(menu: Menu) -> None:
    """The timeout at the language choice counts: the second timeout reaches a human."""
    walk = Walk(menu)
    walk.start()
    assert ask(walk.answer("")).node == "main"
    done = finish(walk.answer(""))
    assert (str(done.route), done.reason, done.node) == ("queue:operator", "no-input", "main")


def test_a_key_resets_the_count_of_timeouts(menu: Menu) -> None:
    walk = at_main(menu)
    walk.answer("")
    walk.answer("9")  # repeat: the caller is there
    assert ask(walk.answer("")).node == "main"
    assert finish(walk.answer("")).reason == "no-input"


def test_invalid_key_plays_invalid_then_repeats_and_valid_key_still_works(menu: Menu) -> None:
    walk = at_main(menu)
    assert ids(walk.answer("7")) == [("invalid", "zh"), ("main", "zh")]
    assert str(finish(walk.answer("2")).route) == "queue:consultation"


def test_failures_count_per_node_and_invalid_ones_end_on_the_operator(menu: Menu) -> None:
    walk = at_main(menu)
    walk.answer("7")
    walk.answer("")
    done = finish(walk.answer("8"))
    assert (str(done.route), done.reason) == ("queue:operator", "invalid")


def test_repeat_key_replays_the_node(menu: Menu) -> None:
    walk = at_main(menu)
    assert ids(walk.answer("9")) == [("main", "zh")]
    assert ids(walk.answer("9")) == [("main", "zh")]
    assert walk.tries == 0


def test_star_goes_back_to_the_parent(menu: Menu) -> None:
    walk = at_main(menu)
    number = ask(walk.answer("3"))
    assert number.node == "workorder"
    assert ask(walk.answer("*")).node == "main"
    language = ask(walk.answer("*"))
    assert language.node == "language"
    assert ids(language) == [("language", "zh"), ("language", "en")]
    assert ask(walk.answer("*")).node == "language"  # nothing above the first node


def test_zero_reaches_the_operator_from_any_node(menu: Menu) -> None:
    walk = Walk(menu)
    walk.start()
    assert finish(walk.answer("0")).reason == "operator"
    walk = at_main(menu)
    done = finish(walk.answer("0"))
    assert (str(done.route), done.reason, done.node) == ("queue:operator", "operator", "main")


def test_english_makes_every_later_prompt_english(menu: Menu) -> None:
    walk = Walk(menu)
    walk.start()
    main = ask(walk.answer("2"))
    assert walk.language == "en"
    assert ids(main) == [("main", "en")]
    assert main.prompts[0].text.startswith("For an operator, press 0")
    assert ids(walk.answer("6")) == [("invalid", "en"), ("main", "en")]
    assert ids(walk.answer("3")) == [("workorder", "en")]
    done = finish(walk.answer("123#"))
    assert done.language == "en"
    walk = Walk(menu)
    walk.start()
    walk.answer("2")
    assert [p.language for p in finish(walk.answer("0")).prompts] == ["en"]


def test_language_choice_after_back_lists_current_language_first(menu: Menu) -> None:
    walk = at_main(menu, "2")
    assert ids(walk.answer("*")) == [("language", "en"), ("language", "zh")]
    assert ids(walk.answer("1")) == [("main", "zh")]


def test_work_order_number_entry_with_hash(menu: Menu) -> None:
    walk = at_main(menu)
    entry = ask(walk.answer("3"))
    assert (entry.terminator, entry.max_digits, entry.timeout_s) == ("#", 20, 10)
    done = finish(walk.answer("2024061800123#"))
    assert str(done.route) == "action:workorder-status"
    assert (done.collected, done.reason, done.node) == ("2024061800123", "selected", "workorder")


def test_number_entry_accepts_digits_without_the_terminator(menu: Menu) -> None:
    # GET DATA strips the '#' it ends on: the adapter may pass the digits alone.
    walk = at_main(menu)
    walk.answer("3")
    assert finish(walk.answer("0099")).collected == "0099"


def test_empty_number_entry_is_no_input(menu: Menu) -> None:
    walk = at_main(menu)
    walk.answer("3")
    assert ids(walk.answer("#")) == [("workorder", "zh")]
    assert ids(walk.answer("")) == [("workorder", "zh")]
    done = finish(walk.answer(""))
    assert (str(done.route), done.reason, done.node) == ("queue:operator", "no-input", "workorder")


def test_bad_number_entry_is_invalid(menu: Menu) -> None:
    walk = at_main(menu)
    walk.answer("3")
    assert ids(walk.answer("12*3#")) == [("invalid", "zh"), ("workorder", "zh")]
    assert ids(walk.answer("1" * 21)) == [("invalid", "zh"), ("workorder", "zh")]


def test_tries_reset_on_entering_another_node(menu: Menu) -> None:
    walk = at_main(menu)
    walk.answer("7")
    walk.answer("7")
    walk.answer("3")
    walk.answer("12*3#")
    walk.answer("12*3#")
    assert ask(walk.answer("*")).node == "main"
    assert ask(walk.answer("7")).node == "main"


def test_walk_must_start_once(menu: Menu) -> None:
    walk = Walk(menu)
    with pytest.raises(WalkError):
        walk.answer("1")
    walk.start()
    with pytest.raises(WalkError):
        walk.start()


def test_language_option_without_goto_repeats_the_node_in_the_new_language() -> None:
    menu = parse_menu(
        """
[menu]
max_tries = 2
max_no_input = 3
[voices]
zh = "cmn"
en = "en"
[prompts.invalid]
zh = "无效"
en = "Invalid"
[nodes.main]
zh = "主菜单"
en = "Main"
[[nodes.main.options]]
key = "8"
language = "en"
[[nodes.main.options]]
key = "1"
route = "queue:report"
"""
    )
    walk = Walk(menu)
    assert ids(walk.start()) == [("main", "zh")]
    assert ids(walk.answer("8")) == [("main", "en")]
    assert ids(walk.answer("")) == [("main", "en")]
    done = finish(walk.answer(""))  # max_tries = 2 from the file, before max_no_input
    assert (str(done.route), done.reason, done.language) == ("queue:operator", "no-input", "en")
    assert done.prompts == ()  # no transfer prompt declared
