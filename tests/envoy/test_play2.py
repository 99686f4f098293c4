"""Play 2 (Kratos sessions) through real Envoy, the Kratos stand-in and the JWKS stand-in: the
reference rule verbatim (cookie_session, jwt, anonymous). Play 3 (machines' JWTs) is in
test_play3.py."""

import json
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import jsonschema
import pytest

from conftest import ROOT, request, start_envoy, upstream_saw
from mint import azure_mi, mint


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


def test_a_valid_session_forwards_the_identity(envoy, kratos):
    seen = upstream_saw(request(envoy.port, "/notes?page=2", headers=cookie("valid-alice") + [("x-user-id", "admin")]))
    assert seen["headers"]["x-user-id"] == [identity("alice")]
    assert seen["headers"]["x-user-email"] == ["alice@example.com"]
    assert seen["path"] == "/notes?page=2"
    calls = kratos.calls()
    assert len(calls) == 1
    assert calls[0]["method"] == "GET"
    assert calls[0]["path"] == "/sessions/whoami"
    assert calls[0]["headers"]["cookie"] == "theme=dark; ory_kratos_session=valid-alice"
    assert "x-user-id" not in calls[0]["headers"]


def test_a_post_is_checked_with_get_at_the_configured_path(envoy, kratos):
    r = request(envoy.port, "/notes?id=3", method="POST", headers=cookie("valid-bob") + [("Content-Type", "application/json")], body=b'{"a":1}')
    assert upstream_saw(r)["headers"]["x-user-id"] == [identity("bob")]
    call = kratos.calls()[0]
    assert (call["method"], call["path"]) == ("GET", "/sessions/whoami")
    assert "content-type" not in call["headers"]


def test_an_invalid_cookie_is_401_not_guest(envoy):
    r = request(envoy.port, "/", headers=cookie("expired"))
    assert r.status == 401
    assert r.json()["error"]["message"] == "Access credentials are invalid"


def test_no_cookie_is_a_guest(envoy, kratos):
    assert upstream_saw(request(envoy.port, "/"))["headers"]["x-user-id"] == ["guest"]
    assert kratos.calls() == []


def test_a_machine_jwt_is_the_second_authenticator(envoy, kratos):
    token = mint(azure_mi(sub="machine-7"))
    seen = upstream_saw(request(envoy.port, "/", headers=[("Authorization", "Bearer " + token)]))
    assert seen["headers"]["x-user-id"] == ["machine-7"]
    assert kratos.calls() == [], "no cookie: cookie_session was not responsible"


def test_a_cookie_wins_over_a_jwt_because_it_comes_first(envoy, kratos):
    token = mint(azure_mi(sub="machine-7"))
    r = request(envoy.port, "/", headers=cookie("valid-judy") + [("Authorization", "Bearer " + token)])
    assert upstream_saw(r)["headers"]["x-user-id"] == [identity("judy")]


def test_kratos_rate_limiting_reaches_the_client(envoy, kratos):
    kratos.control(mode="ratelimit")
    r = request(envoy.port, "/", headers=cookie("valid-carol"))
    assert r.status == 429
    assert r.header("retry-after") == "7"
    assert r.header("x-ratelimit-remaining") == "0"


def test_kratos_down_is_503_never_a_pass_through(envoy, kratos):
    kratos.control(mode="down")
    r = request(envoy.port, "/", headers=cookie("valid-dave"))
    assert r.status == 503
    assert r.json()["error"]["code"] == 503


def test_a_cached_session_is_not_asked_again(envoy, kratos):
    for _ in range(5):
        seen = upstream_saw(request(envoy.port, "/", headers=cookie("valid-erin")))
        assert seen["headers"]["x-user-id"] == [identity("erin")]
    assert len(kratos.calls()) == 1


def test_bearer_token_with_x_session_token(envoy, kratos):
    seen = upstream_saw(request(envoy.port, "/v1/me", host="api.example.com", headers=[("X-Session-Token", "valid-frank")]))
    assert seen["headers"]["x-user-id"] == [identity("frank")]
    call = kratos.calls()[0]
    assert call["headers"]["x-session-token"] == "valid-frank"
    assert "cookie" not in call["headers"]


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
