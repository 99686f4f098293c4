"""Play 1 (anonymous access) and the request-safety rules, through real Envoy."""

import pytest

from conftest import request, start_envoy, upstream_saw


@pytest.fixture(scope="module")
def envoy(upstream):
    with start_envoy("filter-config/play1.yaml", upstream) as e:
        yield e


def test_guest_identity_is_forwarded(envoy):
    seen = upstream_saw(request(envoy.port, "/anything"))
    assert seen["headers"]["x-user-id"] == ["guest"]
    assert seen["path"] == "/anything"


def test_client_sent_identity_is_replaced(envoy):
    r = request(envoy.port, "/", headers=[("x-user-id", "admin"), ("X-User-Id", "root")])
    assert upstream_saw(r)["headers"]["x-user-id"] == ["guest"]


def test_no_matching_rule_is_a_404_json_error(envoy):
    r = request(envoy.port, "/", host="other.example.com")
    assert r.status == 404
    assert r.header("content-type") == "application/json"
    body = r.json()
    body["error"].pop("request", None)  # Envoy's x-request-id
    assert body == {"error": {"code": 404, "status": "Not Found",
                              "message": "Requested url does not match any rules"}}


def test_authorization_makes_anonymous_not_responsible(envoy):
    r = request(envoy.port, "/", headers=[("Authorization", "Bearer x")])
    assert r.status == 401
    assert r.json()["error"]["message"] == "Access credentials are invalid"


@pytest.mark.parametrize("raw,forwarded", [
    ("/a/../b", "/b"),
    ("//x//y", "/x/y"),
    ("/a/./b?q=1", "/a/b?q=1"),
    ("/public/%2e%2e/admin", "/admin"),
    ("/a%2Fb", "/a/b"),
    ("/x/", "/x"),
])
def test_the_upstream_gets_the_path_that_was_matched(envoy, raw, forwarded):
    assert upstream_saw(request(envoy.port, raw))["path"] == forwarded


@pytest.mark.parametrize("raw", [
    "/a\\..\\admin",
    "/a%5c..%5cadmin",
    "/%252e%252e/admin",
    "/public/..;/admin",
    "/a%00b",
])
def test_ambiguous_paths_never_reach_the_upstream(envoy, raw):
    r = request(envoy.port, raw)
    assert r.status == 400, (r.status, r.body)
    assert "path" not in r.json()  # our JSON error, not the echo


def test_a_64_kib_header_is_handled(envoy):
    seen = upstream_saw(request(envoy.port, "/", headers=[("x-big", "a" * 65536)]))
    assert seen["headers"]["x-user-id"] == ["guest"]
    r = request(envoy.port, "/", headers=[("authorization", "b" * 65536)])
    assert r.status == 401


def test_non_utf8_header_bytes_are_a_json_400(envoy):
    r = request(envoy.port, "/", headers=[("x-latin1", b"\xc3\x28")])
    assert r.status == 400
    assert r.json()["error"]["message"] == "header x-latin1 is not UTF-8"


def test_a_request_without_a_host_is_not_forwarded(envoy):
    r = request(envoy.port, "/", host=None)
    assert r.status >= 400
    assert b'"path"' not in r.body
