"""Play 2 (Kratos sessions) through real Envoy, the Kratos stand-in and the JWKS stand-in, beyond
what its table says (tests/scenarios/kratos-play2.yaml, run in Envoy by test_tables.py): the
session cache across requests, concurrent and two-worker requests for one session, and the
stand-in's own contract. Play 3 (machines' JWTs) is in test_play3.py."""

import json
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import jsonschema
import pytest

from conftest import ROOT, request, start_envoy, upstream_saw


def identity(name):
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "identity/" + name))


@pytest.fixture(scope="module")
def envoy(upstream, kratos, jwks):
    with start_envoy("filter-config/play2.yaml", upstream, kratos, jwks) as e:
        yield e


@pytest.fixture(autouse=True)
def fresh(kratos):
    kratos.reset()


def cookie(token):
    return [("Cookie", f"theme=dark; ory_kratos_session={token}")]


def test_a_cached_session_is_not_asked_again(envoy, kratos):
    for _ in range(5):
        seen = upstream_saw(request(envoy.port, "/", headers=cookie("valid-erin")))
        assert seen["headers"]["x-user-id"] == [identity("erin")]
    assert len(kratos.calls()) == 1


def test_concurrent_requests_for_one_session_make_one_call(envoy, kratos):
    kratos.control(latency_ms=200)
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda _: request(envoy.port, "/", headers=cookie("valid-grace")), range(8)))
    assert [r.status for r in results] == [200] * 8
    assert len(kratos.calls()) == 1


def test_two_workers_make_about_one_call_per_session(upstream, kratos, jwks):
    with start_envoy("filter-config/play2.yaml", upstream, kratos, jwks, concurrency=2) as e:
        kratos.reset()
        with ThreadPoolExecutor(4) as pool:
            statuses = list(pool.map(lambda _: request(e.port, "/", headers=cookie("valid-heidi")).status, range(1000)))
        assert statuses == [200] * 1000
        calls = len(kratos.calls())
        print(f"1000 requests, one cookie, 2 workers: {calls} whoami calls")
        assert calls <= 2


def schema_validator(name):
    spec = json.loads((ROOT.parent / "shared/reference/kratos-whoami.openapi.json").read_text())
    schema = {"$ref": f"#/components/schemas/{name}", "components": spec["components"]}
    return jsonschema.Draft202012Validator(schema)


def test_the_stand_in_answers_per_the_kratos_contract(kratos):
    import urllib.request
    import urllib.error

    def get(token):
        req = urllib.request.Request(f"http://127.0.0.1:{kratos.port}/sessions/whoami",
                                     headers={"Cookie": f"ory_kratos_session={token}"})
        try:
            with urllib.request.urlopen(req, timeout=5) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read())

    status, body = get("valid-ivan")
    assert status == 200
    schema_validator("session").validate(body)
    status, body = get("nope")
    assert status == 401 and body["error"]["id"] == "session_inactive"
    schema_validator("errorGeneric").validate(body)
    status, body = get("aal1-judy")
    assert status == 403 and body["error"]["id"] == "session_aal2_required"
    schema_validator("errorGeneric").validate(body)
