"""The menu file: the default tree loads, and each kind of mistake is refused with a line."""

from __future__ import annotations

from pathlib import Path

import pytest

from ivr.menu import MenuError, Route, load_menu, parse_menu
from ivr.toml_lines import LineIndex

DEFAULT_MENU = Path(__file__).resolve().parent.parent / "ivr" / "menu.toml"

SMALL = """\
[menu]
start = "main"
intro = ["welcome"]

[voices]
zh = "cmn"
en = "en"

[prompts.welcome]
zh = "欢迎"
en = "Welcome"

[prompts.invalid]
zh = "输入有误"
en = "Invalid"

[nodes.main]
zh = "主菜单"
en = "Main menu"
[[nodes.main.options]]
key = "1"
route = "queue:report"
[[nodes.main.options]]
key = "3"
goto = "sub"

[nodes.sub]
zh = "子菜单"
en = "Sub menu"
[[nodes.sub.options]]
key = "1"
route = "action:fax"
"""


def line_of(text: str, needle: str, occurrence: int = 1) -> int:
    lines = [i for i, line in enumerate(text.splitlines(), 1) if needle in line]
    return lines[occurrence - 1]


def refused(text: str, **kwargs: object) -> MenuError:
    with pytest.raises(MenuError) as caught:
        parse_menu(text, "menu.toml", **kwargs)  # type: ignore[arg-type]
    return caught.value


def test_default_menu_loads_with_the_tree_the_issue_asks_for() -> None:
    menu = load_menu(DEFAULT_MENU)
    main = menu.nodes[menu.main]
    routes = {o.key: str(o.route) for o in main.options if o.route}
    assert routes == {
        "1": "queue:report",
        "2": "queue:consultation",
        "4": "queue:business",
        "5": "action:fax",
    }
    number = menu.nodes[main.option("3").goto]  # type: ignore[union-attr, index]
    assert number.entry is not None
    assert str(number.entry.route) == "action:workorder-status"
    assert number.entry.terminator == "#"
    assert menu.operator_route == Route("queue", "operator")
    assert menu.languages == ("zh", "en") and menu.default_language == "zh"
    assert menu.timeout_s == 5 and menu.max_tries == 3
    assert menu.voices == {"zh": "cmn", "en": "en"}
    assert menu.prompts["welcome"].texts["zh"] == "欢迎致电一二三四五热线。"
    assert "幺幺零、幺幺九、幺二零" in menu.prompts["emergency"].texts["zh"]  # 110 119 120
    assert max(n.depth or 0 for n in menu.nodes.values()) <= 2
    for text in menu.texts():
        assert set(text.texts) == {"zh", "en"}


def test_small_menu_loads() -> None:
    menu = parse_menu(SMALL)
    assert menu.nodes["sub"].depth == 2
    assert menu.nodes["main"].option("1") is not None
    assert len(menu.all_prompts()) == 2 * 4


def test_route_syntax() -> None:
    assert str(Route.parse("queue:report")) == "queue:report"
    assert Route.parse("action:workorder-status").kind == "action"
    for bad in ("report", "queue:", "ring:report", "queue:a b", 5):
        with pytest.raises(ValueError, match="bad route"):
            Route.parse(bad)


def test_toml_syntax_error_names_the_line() -> None:
    text = SMALL.replace('en = "Sub menu"', "en = Sub menu")
    error = refused(text)
    assert error.line == line_of(text, "en = Sub menu")
    assert "not valid TOML" in error.reason
    assert str(error).startswith(f"menu.toml:{error.line}: ")


def test_duplicate_table_key_rejected_by_toml() -> None:
    text = SMALL.replace('zh = "子菜单"', 'zh = "子菜单"\nzh = "again"')
    error = refused(text)
    assert error.line == line_of(text, 'zh = "again"')
    assert "not valid TOML" in error.reason


def test_unknown_target_node() -> None:
    text = SMALL.replace('goto = "sub"', 'goto = "nowhere"')
    error = refused(text)
    assert error.line == line_of(text, 'key = "3"')
    assert "unknown target node 'nowhere'" in error.reason


def test_two_options_on_the_same_key() -> None:
    text = SMALL.replace('key = "3"', 'key = "1"')
    error = refused(text)
    first, second = line_of(text, 'key = "1"', 1), line_of(text, 'key = "1"', 2)
    assert error.line == second
    assert f"duplicate key '1' (first at line {first})" in error.reason


def test_missing_prompt_text_for_a_declared_language() -> None:
    text = SMALL.replace('en = "Sub menu"\n', "")
    error = refused(text)
    assert error.line == line_of(text, "[nodes.sub]")
    assert "missing prompt text for 'en'" in error.reason
    text = SMALL.replace('en = "Invalid"\n', "")
    assert "prompts.invalid: missing prompt text for 'en'" in refused(text).reason


def test_bad_route_syntax() -> None:
    text = SMALL.replace('route = "action:fax"', 'route = "fax"')
    error = refused(text)
    assert error.line == line_of(text, 'route = "fax"')
    assert "bad route 'fax'" in error.reason


@pytest.mark.parametrize("key", ['"x"', '"12"', '"#"', "10"])
def test_key_that_is_not_a_dtmf_digit(key: str) -> None:
    text = SMALL.replace('key = "3"', f"key = {key}")
    error = refused(text)
    assert error.line == line_of(text, f"key = {key}")
    assert "key" in error.reason


@pytest.mark.parametrize("key", ["0", "9", "*"])
def test_global_keys_are_not_per_node(key: str) -> None:
    text = SMALL.replace('key = "3"', f'key = "{key}"')
    error = refused(text)
    assert error.line == line_of(text, f'key = "{key}"')
    assert "is global" in error.reason


def test_depth_over_the_maximum() -> None:
    deeper = SMALL.replace('route = "action:fax"', 'goto = "deep"') + (
        '\n[nodes.deep]\nzh = "三级"\nen = "Third"\n[[nodes.deep.options]]\n'
        'key = "1"\nroute = "queue:report"\n'
    )
    error = refused(deeper)
    assert error.line == line_of(deeper, "[nodes.deep]")
    assert "3 levels deep, over max_depth 2" in error.reason
    assert parse_menu(deeper, max_depth=3).nodes["deep"].depth == 3
    assert "max_depth 1" in refused(SMALL, max_depth=1).reason


def test_every_problem_is_reported_at_once() -> None:
    text = SMALL.replace('route = "queue:report"', 'route = "report"').replace(
        'goto = "sub"', 'goto = "nowhere"'
    )
    error = refused(text)
    reasons = [reason for _, reason in error.problems]
    assert any("bad route" in r for r in reasons)
    assert any("unknown target node" in r for r in reasons)
    assert len(str(error).splitlines()) == len(error.problems)


def test_misspelt_fields_and_settings() -> None:
    text = SMALL.replace('route = "action:fax"', 'rout = "action:fax"')
    assert "unknown option field 'rout'" in refused(text).reason
    text = SMALL.replace('start = "main"', 'start = "main"\ntimout_s = 3')
    error = refused(text)
    assert error.line == line_of(text, "timout_s") and "unknown setting" in error.reason
    text = SMALL.replace('en = "Sub menu"', 'en = "Sub menu"\nfr = "Sous-menu"')
    assert "unknown field 'fr'" in refused(text).reason


def test_menu_settings_are_checked() -> None:
    text = SMALL.replace('start = "main"', 'start = "main"\nmax_tries = 0')
    assert "max_tries" in refused(text).reason
    text = SMALL.replace('start = "main"', 'start = "main"\noperator_route = "human"')
    assert "bad route 'human'" in refused(text).reason
    text = SMALL.replace('start = "main"', 'start = "menu"')
    error = refused(text)
    assert error.line == 2 and "unknown target node 'menu'" in error.reason
    text = SMALL.replace('intro = ["welcome"]', 'intro = ["hello"]')
    assert "unknown prompt 'hello'" in refused(text).reason
    text = SMALL.replace('en = "en"\n', "")
    assert "no TTS voice for language 'en'" in refused(text).reason


def test_load_menu_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "menu.toml"
    path.write_text(SMALL.replace('goto = "sub"', 'goto = "nowhere"'), encoding="utf-8")
    with pytest.raises(MenuError) as caught:
        load_menu(path)
    assert caught.value.file == str(path)
    assert str(caught.value).startswith(f"{path}:")
    with pytest.raises(MenuError, match="cannot read"):
        load_menu(tmp_path / "absent.toml")


def test_line_index_finds_array_tables_and_keys() -> None:
    index = LineIndex(SMALL)
    assert index.find("nodes.main.options", index=1, key="goto") == line_of(SMALL, "goto")
    assert index.find("nodes.sub") == line_of(SMALL, "[nodes.sub]")
    assert index.find("menu", key="intro") == 3
    assert index.find("nowhere") is None
