"""The web API fuzzed against its OpenAPI document (schemathesis): no request ends in a 500,
and every refusal has the one error shape — Open311's GeoReport error list under /open311/v2/.

The application is the engine's own: ``Hotline.start`` (real SQLite database, Redis under a
private prefix, FastAGI, every route the engine mounts), without Asterisk (AMI stays down,
so /healthz answers 503, which its document declares). The engine runs in a thread with its
own event loop because schemathesis calls it synchronously.
"""

from __future__ import annotations

import asyncio
import threading
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from xml.etree import ElementTree as ET

import jsonschema_rs
import pytest
import redis
import schemathesis
from conftest import TEST_REDIS_URL, web_engine_settings
from hypothesis import HealthCheck, Phase, settings

from hotline.engine import Hotline
from sipsim.ports import SHIFTS
from web.openapi import openapi_document

STAFF_TOKEN = "fuzz-operator-token"
SUPERVISOR_TOKEN = "fuzz-supervisor-token"
# a recorded announcement's body is a WAV file's bytes: sent as they are
schemathesis.serializer.alias("audio/wav", "application/octet-stream")
schema = schemathesis.openapi.from_dict(openapi_document())
ONE_SHAPE = openapi_document()["components"]["schemas"]["Error"]
GEOREPORT = openapi_document()["components"]["schemas"]["GeoReportErrors"]


@dataclass(frozen=True)
class RunningEngine:
    url: str
    supervisor: str  # a supervisor's Authorization header value
    api_key: str


#: keeps this engine off the e2e engine's ports when both run in one session
FUZZ_PORT_SHIFT = SHIFTS["api-fuzz"]


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningEngine]:
    base = tmp_path_factory.mktemp("fuzz")
    # ports of its own: the session's e2e engine and Asterisk hold the usual test ports (no
    # Asterisk here: nothing answers on its AMI port)
    s = web_engine_settings(base, "fuzz", FUZZ_PORT_SHIFT)
    prefix = s.acd_prefix
    s.data_dir.mkdir(parents=True)
    s.effective_staff_file.write_text(
        f'[[staff]]\ntoken = "{STAFF_TOKEN}"\nname = "fuzz"\nrole = "operator"\n'
        f'[[staff]]\ntoken = "{SUPERVISOR_TOKEN}"\nname = "lead"\nrole = "supervisor"\n',
        "utf-8",
    )
    hotline = Hotline(s)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="engine-under-fuzz", daemon=True)
    thread.start()
    asyncio.run_coroutine_threadsafe(hotline.start(), loop).result(timeout=120)
    try:
        secrets = tomllib.loads((s.data_dir / "secrets.toml").read_text("utf-8"))
        yield RunningEngine(
            f"http://{s.web_host}:{s.web_port}", f"Bearer {SUPERVISOR_TOKEN}",
            secrets["open311_api_key"],
        )  # fmt: skip
    finally:
        asyncio.run_coroutine_threadsafe(hotline.stop(), loop).result(timeout=120)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()
        client = redis.Redis.from_url(TEST_REDIS_URL)
        keys = list(client.scan_iter(f"{prefix}*"))
        if keys:
            client.delete(*keys)
        client.close()


def credentials(path: str, engine: RunningEngine) -> dict[str, str]:
    """What a legitimate client sends, so the fuzzer reaches past authentication."""
    if path.startswith("/api/workorders"):
        return {"Authorization": f"Bearer {STAFF_TOKEN}"}
    supervisors = ("/api/calls", "/api/stats", "/api/seats", "/api/knowledge", "/api/wallboard",
                   "/metrics", "/api/reports")  # fmt: skip
    if path.startswith(supervisors):
        return {"Authorization": engine.supervisor}
    return {}


@schema.parametrize()
@settings(
    max_examples=25,
    deadline=None,
    database=None,  # no .hypothesis folder in the work tree
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)
def test_no_500_and_one_error_shape(case: schemathesis.Case, engine: RunningEngine) -> None:
    if case.path == "/open311/v2/requests.{format}" and case.method == "POST":
        if isinstance(case.body, dict) and case.body.get("api_key") == "":
            case.body["api_key"] = engine.api_key  # sometimes past the key check
    response = case.call(base_url=engine.url, headers=credentials(case.path, engine), timeout=30)
    status = response.status_code
    body = response.content[:300].decode("utf-8", "replace")  # an XLSX download is binary
    where = f"{case.method} {case.formatted_path} -> {status}: {body}"
    assert status < 500 or (case.path == "/healthz" and status == 503), where
    if not 400 <= status < 500:
        return  # an answer (or /healthz's documented 503)
    content_type = response.headers.get("content-type", [""])[0]  # lists, by lower-case name
    if case.path.startswith("/open311/v2/"):
        if content_type.startswith("text/xml"):
            assert ET.fromstring(response.text.split("\n", 1)[1]).tag == "errors", where
        else:
            jsonschema_rs.validate(GEOREPORT, response.json())
    else:
        assert content_type.startswith("application/json"), where
        jsonschema_rs.validate(ONE_SHAPE, response.json())


def test_the_document_is_served(engine: RunningEngine) -> None:
    import requests

    served = requests.get(f"{engine.url}/openapi.json", timeout=10).json()
    assert served == openapi_document()


def test_every_documented_path_is_mounted(engine: RunningEngine) -> None:
    """The fuzzer's refusals prove nothing of a path the engine never mounted (aiohttp's 404
    has the one shape too): each documented GET path without parameters answers, not 404."""
    import requests

    for path, operations in openapi_document()["paths"].items():
        if "get" not in operations or "{" in path:
            continue
        answer = requests.get(f"{engine.url}{path}", headers=credentials(path, engine),
                              timeout=10)  # fmt: skip
        assert answer.status_code != 404, (path, answer.text)
