"""The knowledge base on SQLite and PostgreSQL, its schema made by the migrations (the
engine's own create_schema) and the service made by the engine's wiring: Chinese search
(jieba words in FTS5 / the GIN-indexed tsvector), a word inside a longer one, ranking,
validity days, unique and bounded titles, edits and deletes reaching the index, import and
export (JSON and CSV, and through the `hotline knowledge` command)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from knowledge_db import KnowledgeDb, knowledge_db
from sql_databases import KINDS
from sqlalchemy import inspect, text

from hotline.settings import PROJECT_DIR
from knowledge import files
from knowledge.entries import MAX_TITLE, DuplicateTitle, InvalidEntry, UnknownEntry
from knowledge.search import Match

SEED = PROJECT_DIR / "knowledge" / "seed.json"
TODAY = date(2026, 11, 23)  # web_client.NOW in Beijing

SOCIAL_CARD = {
    "title": "社保卡补办流程",
    "category": "劳动保障/社保卡",
    "content": "社保卡丢失后，先拨打12333挂失，再携带本人身份证到合作银行网点申请补办，"
    "即时制卡网点当场领取。",
    "issuing_unit": "市人力资源和社会保障局",
    "keywords": ["挂失"],
}
PENSION = {
    "title": "城乡居民养老保险缴费",
    "category": "劳动保障/养老保险",
    "content": "城乡居民养老保险按年缴费，社保经办窗口和银行均可办理。",
}
ID_CARD = {
    "title": "居民身份证补领",
    "category": "户籍证件/身份证",
    "content": "身份证丢失可在任一户政窗口补领，需本人到场。",
}
NOISE = {
    "title": "施工扰民怎么处理",
    "category": "噪音扰民/建筑施工",
    "content": "晚上十点以后仍有夜间施工噪音扰民的，由生态环境部门核查处理。",
}
WATER_TITLE = {
    "title": "停水通知查询",
    "category": "供水/停水",
    "content": "计划性检修由水务集团提前一天在官网公告。",
}
WATER_BODY = {
    "title": "供水服务热线说明",
    "category": "供水/服务",
    "content": "水务集团热线受理水压低、水表、账单等问题，也可以咨询停水。" * 3,
}


@pytest.fixture(params=KINDS)
async def kb(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[KnowledgeDb]:
    async with knowledge_db(request.param, tmp_path) as db:
        yield db


def titles(hits: Any) -> list[str]:
    return [hit.entry.title for hit in hits]


async def test_the_search_index_is_the_migrations(kb: KnowledgeDb) -> None:
    """SQLite: the FTS5 table and its triggers; PostgreSQL: the GIN index, which the search
    query uses (the expression must be the index's own)."""
    await kb.service.create(SOCIAL_CARD, "lead")
    async with kb.engine.connect() as conn:
        if kb.kind == "sqlite":
            names = set(
                (await conn.execute(text("SELECT name FROM sqlite_master"))).scalars().all()
            )
            assert {"knowledge_search", "knowledge_search_added", "knowledge_search_changed",
                    "knowledge_search_deleted"} <= names  # fmt: skip
            found = await conn.execute(
                text("SELECT rowid FROM knowledge_search WHERE knowledge_search MATCH '补办'")
            )
            assert len(found.all()) == 1
        else:
            indexes = await conn.run_sync(
                lambda c: {i["name"] for i in inspect(c).get_indexes("knowledge_entries")}
            )
            assert "knowledge_search_gin" in indexes
            from knowledge.search import ranked

            await conn.execute(text("SET enable_seqscan = off"))
            query = ranked("postgresql", ["补办"], Match.ALL, [])
            compiled = query.compile(conn.sync_connection, compile_kwargs={"literal_binds": True})
            plan = (await conn.execute(text(f"EXPLAIN {compiled}"))).scalars().all()
            assert any("knowledge_search_gin" in line for line in plan), plan


async def test_chinese_queries_find_the_entry(kb: KnowledgeDb) -> None:
    for entry in (PENSION, ID_CARD, SOCIAL_CARD, NOISE):
        await kb.service.create(entry, "lead")
    found = await kb.service.search("社保卡补办")
    assert found.terms == ("社保卡", "补办") and found.match is Match.ALL
    assert titles(found.hits) == ["社保卡补办流程"]
    # a question as a citizen asks it: stop words dropped; 丢 is in no entry, so any word
    found = await kb.service.search("请问社保卡丢了怎么补办？")
    assert "请问" not in found.terms and "怎么" not in found.terms
    assert titles(found.hits)[0] == "社保卡补办流程"
    # a word inside longer ones: 社保 in 社保卡 (title) and in 社保经办 (another's content)
    assert set(titles((await kb.service.search("社保")).hits)) == {"社保卡补办流程",
                                                               "城乡居民养老保险缴费"}  # fmt: skip
    assert titles((await kb.service.search("噪音")).hits) == ["施工扰民怎么处理"]
    assert titles((await kb.service.search("夜间施工")).hits) == ["施工扰民怎么处理"]
    assert titles((await kb.service.search("挂失")).hits) == ["社保卡补办流程"]  # keyword
    assert (await kb.service.search("公积金")).hits == ()
    assert (await kb.service.search("请问怎么办")).terms == ()  # only stop words: nothing
    # FTS5's query language is not the caller's: quotes and operators are words like others
    assert titles((await kb.service.search('补办" OR NOT "x')).hits) == ["社保卡补办流程"]


async def test_ranking(kb: KnowledgeDb) -> None:
    for entry in (WATER_BODY, WATER_TITLE, ID_CARD):
        await kb.service.create(entry, "lead")
    # the word in the title ranks above the word in the body
    hits = (await kb.service.search("停水")).hits
    assert titles(hits) == ["停水通知查询", "供水服务热线说明"]
    assert hits[0].score > hits[1].score
    # any word: the entry with more of them first
    hits = (await kb.service.search("水务集团 水表 账单", match=Match.ANY)).hits
    assert titles(hits)[0] == "供水服务热线说明"


async def test_only_valid_entries_unless_asked(kb: KnowledgeDb) -> None:
    await kb.service.create({**SOCIAL_CARD, "valid_to": TODAY.isoformat()}, "lead")
    await kb.service.create(
        {**PENSION, "valid_from": "2026-11-24", "content": "2027年度社保缴费标准。"}, "lead"
    )
    await kb.service.create({**ID_CARD, "valid_to": "2026-11-22", "content": "旧社保政策"}, "lead")
    assert titles((await kb.service.search("社保")).hits) == ["社保卡补办流程"]  # its last day
    every = await kb.service.search("社保", include_invalid=True)
    assert len(every.hits) == 3
    assert [e.title for e in await kb.service.listing()] == ["社保卡补办流程"]
    kb.clock.advance(days=1)
    assert titles((await kb.service.search("社保")).hits) == ["城乡居民养老保险缴费"]
    with pytest.raises(InvalidEntry, match="before valid_from"):
        await kb.service.create({**NOISE, "valid_from": "2026-12-01", "valid_to": "2026-11-30"},
                                "lead")  # fmt: skip
    entry = (await kb.service.listing(include_invalid=True))[0]
    with pytest.raises(InvalidEntry, match="before valid_from"):  # with the stored date
        await kb.service.update(entry.id, {"valid_to": "2000-01-01"}, "lead")


async def test_titles_unique_and_at_most_128_characters(kb: KnowledgeDb) -> None:
    first = await kb.service.create(SOCIAL_CARD, "lead")
    with pytest.raises(DuplicateTitle):
        await kb.service.create({**PENSION, "title": "社保卡补办流程"}, "lead")
    with pytest.raises(DuplicateTitle):
        await kb.service.create({**PENSION, "title": "  社保卡补办流程 "}, "lead")  # trimmed
    second = await kb.service.create(PENSION, "lead")
    with pytest.raises(DuplicateTitle):
        await kb.service.update(second.id, {"title": "社保卡补办流程"}, "lead")
    longest = await kb.service.create({**ID_CARD, "title": "证" * MAX_TITLE}, "lead")
    assert len(longest.title) == 128
    with pytest.raises(InvalidEntry, match="longer than 128"):
        await kb.service.create({**NOISE, "title": "噪" * (MAX_TITLE + 1)}, "lead")
    for bad in ({**NOISE, "title": ""}, {**NOISE, "title": "a\x00b"}, {**NOISE, "kind": "x"},
                {**NOISE, "category": "a//b"}, {**NOISE, "valid_from": "tomorrow"},
                {**NOISE, "colour": "red"}, {**NOISE, "keywords": [1]}):  # fmt: skip
        with pytest.raises(InvalidEntry):
            await kb.service.create(bad, "lead")
    assert await kb.service.count() == 3
    assert (await kb.service.get(first.id)).title == "社保卡补办流程"


async def test_edits_and_deletes_reach_the_index(kb: KnowledgeDb) -> None:
    entry = await kb.service.create(NOISE, "lead")
    changed = await kb.service.update(
        entry.id, {"content": "广场舞音响声音太大的，由街道劝导。", "keywords": ["广场舞"]}, "李强"
    )
    assert changed.updated_by == "李强" and changed.title == NOISE["title"]
    assert (await kb.service.search("夜间")).hits == ()  # the old content's word
    assert titles((await kb.service.search("音响")).hits) == [NOISE["title"]]
    await kb.service.delete(entry.id, "lead")
    assert (await kb.service.search("音响")).hits == ()
    with pytest.raises(UnknownEntry):
        await kb.service.get(entry.id)


async def test_import_export_round_trip(kb: KnowledgeDb, tmp_path: Path) -> None:
    report = await kb.service.import_entries(files.read(SEED), "test")
    assert (report.created, report.updated) == (20, 0)
    found = await kb.service.search("社保卡补办")
    assert titles(found.hits)[0].startswith("社保卡补办流程")
    assert titles((await kb.service.search("停水")).hits)[0].startswith("计划停水通知")
    # this year's heating season only, last year's has ended
    heating = titles((await kb.service.search("供暖期")).hits)
    assert heating == ["2026-2027年度供暖期 (Heating season 2026-2027)"]
    exported = await kb.service.export()
    for fmt in files.FORMATS:
        written = files.render(exported, fmt)
        again = files.parse(written, fmt)
        assert [r["title"] for r in again] == [e.title for e in exported]
        report = await kb.service.import_entries(again, "test")  # same titles: updated
        assert (report.created, report.updated) == (0, 20)
        assert files.render(await kb.service.export(), fmt) == written
    assert [e.fields() for e in await kb.service.export()] == [e.fields() for e in exported]
    # all or nothing: one bad record and none is stored
    records = files.parse(files.render(exported, "csv"), "csv")
    records[3]["valid_from"] = "2026-13-01"
    records.append({**records[0], "title": "一条新的"})
    with pytest.raises(InvalidEntry, match="entry 4: valid_from"):
        await kb.service.import_entries(records, "test")
    assert await kb.service.count() == 20
    with pytest.raises(InvalidEntry, match="given twice"):
        await kb.service.import_entries([SOCIAL_CARD, SOCIAL_CARD], "test")
    with pytest.raises(InvalidEntry, match="header lacks"):
        files.parse("name,text\na,b\n", "csv")
    with pytest.raises(InvalidEntry, match="list of entries"):
        files.parse('{"title": "x"}', "json")


def _hotline(args: list[str], data_dir: Path) -> subprocess.CompletedProcess[str]:
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith("HOTLINE_")}
    env.update(HOTLINE_DATA_DIR=str(data_dir), PYTHONPATH=str(PROJECT_DIR))
    return subprocess.run([sys.executable, "-m", "hotline.cli", "knowledge", *args], env=env,
                          cwd=PROJECT_DIR, capture_output=True, text=True, timeout=120,
                          check=False)  # fmt: skip


def test_the_knowledge_command_imports_the_seed_and_exports(tmp_path: Path) -> None:
    done = _hotline(["import", "knowledge/seed.json"], tmp_path / "a")
    assert done.returncode == 0, done.stderr
    assert "20 added, 0 updated" in done.stdout
    out = tmp_path / "kb.csv"
    done = _hotline(["export", "--format", "csv", "--output", str(out)], tmp_path / "a")
    assert done.returncode == 0, done.stderr
    assert out.read_text("utf-8").startswith("title,category,kind,content,")
    done = _hotline(["import", str(out)], tmp_path / "b")  # another installation
    assert done.returncode == 0 and "20 added" in done.stdout, done.stderr
    exported = json.loads(_hotline(["export"], tmp_path / "b").stdout)["entries"]
    assert exported == json.loads(SEED.read_text("utf-8"))["entries"]
    bad = tmp_path / "bad.json"
    bad.write_text('[{"title": "x"}]', "utf-8")
    done = _hotline(["import", str(bad)], tmp_path / "b")
    assert done.returncode == 2 and "entry 1: category is required" in done.stderr


def test_every_seed_entry_is_valid_today_or_dated() -> None:
    records = files.read(SEED)
    assert len(records) == 20
    assert all(len(r["title"]) <= MAX_TITLE for r in records)
    assert any(r["valid_to"] and date.fromisoformat(r["valid_to"]) < TODAY for r in records)
