"""Drafting and dispatch from Mandarin text: category, topic, district, department."""

from __future__ import annotations

import pytest

from workorders.dispatch import DispatchRules, extract_address


@pytest.fixture(scope="module")
def rules() -> DispatchRules:
    return DispatchRules.load()


def test_territory_first_for_a_territorial_matter(rules: DispatchRules) -> None:
    s = rules.suggest("我要投诉，小寨附近的工地晚上施工噪音太吵了，我家住在长安南路88号")
    assert s.category == "complaint" and s.subject == "噪音扰民"
    assert s.district == "雁塔区" and s.location == "长安南路88号"
    assert s.lead_department == "雁塔区人民政府"
    assert s.assisting_departments == ("市生态环境局",)


def test_department_in_charge_for_a_city_wide_matter(rules: DispatchRules) -> None:
    s = rules.suggest("钟楼附近燃气泄漏，很紧急，请马上派人")
    assert s.subject == "燃气" and s.district == "碑林区"
    assert s.lead_department == "市燃气集团" and s.assisting_departments == ()
    assert s.urgent and s.category == "help"


def test_department_in_charge_without_a_place(rules: DispatchRules) -> None:
    s = rules.suggest("请问公积金怎么办理提取，需要什么材料")
    assert s.category == "consultation" and s.lead_department == "市住房公积金管理中心"
    assert s.district is None and s.location == "" and not s.urgent


@pytest.mark.parametrize(
    ("text", "category"),
    [
        ("我想举报东大街有人无证经营", "report"),
        ("建议在张家堡增设公交站", "suggestion"),
        ("表扬一下曲江池小区的物业，电梯修得很快", "praise"),
        ("家里停水三天了，能不能帮忙问问", "help"),
        ("你好", "consultation"),
    ],
)
def test_categories(rules: DispatchRules, text: str, category: str) -> None:
    assert rules.suggest(text).category == category


def test_a_place_alone_goes_to_its_district(rules: DispatchRules) -> None:
    s = rules.suggest("北院门那边的事情想反映一下")
    assert s.district == "莲湖区" and s.lead_department == "莲湖区人民政府"


def test_longest_place_name_wins_and_addresses_are_trimmed(rules: DispatchRules) -> None:
    assert rules.district_of("大雁塔北广场")[1] == "大雁塔"
    assert extract_address("表扬一下曲江池小区的物业", rules.place_names) == "曲江池小区"
    assert extract_address("我家住在文艺路12号") == "文艺路12号"
    assert extract_address("没有地址") == ""


def test_rules_file_rejects_unknown_categories() -> None:
    with pytest.raises(ValueError, match="unknown categories"):
        DispatchRules.from_mapping({"category": [{"name": "gossip", "keywords": ["八卦"]}]})


def test_the_queue_chosen_sets_the_kind_of_a_calls_order() -> None:
    """rules.toml's [queue.*]: the one place where a menu queue becomes a kind of order."""
    rules = DispatchRules.load()
    assert rules.suggest("안녕하세요", "report").category == "complaint"  # key 1, no keyword
    assert rules.suggest("我要举报偷排", "report").category == "report"  # the words pick
    assert rules.suggest("我要举报偷排", "consultation").category == "consultation"
    assert rules.suggest("停水了帮帮忙", "consultation").category == "help"
    business = rules.suggest("请问公积金怎么办理", "business")
    assert business.category == "consultation" and business.subject.startswith("[营商环境]")
    assert rules.suggest("我要举报偷排").category == "report"  # no queue: keywords alone
    with pytest.raises(ValueError, match="queue x"):
        DispatchRules.from_mapping({"queue": {"x": {"categories": ["gossip"]}}})
