"""Browser clients behind portcullis in real Envoy, from envoy/browser.yaml as shipped (only its
${...} placeholders filled): CORS with credentials answered by envoy.filters.http.cors placed
before portcullis, with Oathkeeper's (rs/cors') wildcard-origin semantics, and WebSockets
authenticated on their handshake. One Envoy serves the whole module."""

import base64
import json
import os
import socket
import time
import urllib.request
import uuid

import pytest

from conftest import ROOT, request, require_envoy, serve, upstream_saw
import envoy_harness
import ws_echo

COOKIE = ("Cookie", "ory_kratos_session=valid-alice")
ALICE = str(uuid.uuid5(uuid.NAMESPACE_URL, "identity/alice"))
APP = "https://app.example.com"
CORS_HEADERS = ("access-control-allow-origin", "access-control-allow-credentials",
                "access-control-allow-methods", "access-control-allow-headers",
                "access-control-max-age", "access-control-expose-headers")


@pytest.fixture(scope="module")
def websocket():
    yield from serve("ws_echo.py")


@pytest.fixture(scope="module")
def envoy(upstream, kratos, websocket):
    require_envoy()
    with envoy_harness.Envoy(None, bootstrap=ROOT / "envoy/browser.yaml", upstream_port=upstream,
                             kratos_port=kratos.port, values={"WEBSOCKET_PORT": websocket}) as e:
        yield e


@pytest.fixture
def fresh(kratos):
    kratos.reset()
    return kratos


def decisions(envoy):
    """How many requests portcullis has decided (its per-decision counters, summed)."""
    total = 0
    for line in envoy.stats("portcullis").splitlines():
        name, _, value = line.partition(": ")
        if name.endswith("portcullis_requests_total"):
            total += int(value)
    return total


def settled_decisions(envoy, seconds=5):
    """The decision count once a request portcullis decides (a 401) shows in its counters, which
    it publishes on a 1 s tick: a baseline that later requests are compared with."""
    before = decisions(envoy)
    assert request(envoy.port, "/notes", host="api.example.com").status == 401
    deadline = time.time() + seconds
    while decisions(envoy) <= before:
        assert time.time() < deadline, envoy.stats("portcullis")
        time.sleep(0.1)
    return decisions(envoy)


def preflight(envoy, origin, host="api.example.com", method="POST", headers="content-type"):
    return request(envoy.port, "/notes", host=host, method="OPTIONS", headers=[
        ("Origin", origin), ("Access-Control-Request-Method", method),
        ("Access-Control-Request-Headers", headers)])


def assert_cors_for(r, origin):
    assert r.header("access-control-allow-origin") == origin, r.headers
    assert r.header("access-control-allow-credentials") == "true", r.headers


def assert_no_cors(r):
    assert not [h for h in CORS_HEADERS if h in r.headers], r.headers


def assert_preflight_refused(r):
    """Envoy's answer to a preflight from an origin not allowed (forward_not_matching_preflights:
    false): 200 without Access-Control-Allow-Origin, so the browser fails the preflight and sends
    nothing. Envoy still lists the policy's static headers (methods, headers, max age,
    credentials); rs/cors would send none of them, and none of them grants anything without an
    allowed origin."""
    assert r.status == 200, (r.status, r.body)
    assert "access-control-allow-origin" not in r.headers, r.headers
    assert "access-control-expose-headers" not in r.headers, r.headers


# --- CORS ------------------------------------------------------------------------------------------

def test_a_preflight_from_an_allowed_origin_is_answered_before_any_rule(envoy, fresh):
    before = settled_decisions(envoy)
    fresh.reset()
    r = preflight(envoy, APP)
    assert r.status in (200, 204), (r.status, r.body)
    assert_cors_for(r, APP)
    assert r.header("access-control-allow-methods") == "GET,POST,PUT,PATCH,DELETE"
    assert r.header("access-control-allow-headers") == "Authorization,Content-Type,X-Session-Token"
    assert r.header("access-control-max-age") == "600"
    # No rule ran: Kratos was not asked, and portcullis decided nothing more (a whole tick later).
    time.sleep(1.2)
    assert fresh.calls() == []
    assert decisions(envoy) == before
    # And the CORS filter says it answered the preflight itself.
    assert "cors.origin_valid" in envoy.stats("cors")


def test_a_preflight_from_an_origin_not_allowed_gets_no_allowed_origin_and_no_rule(envoy, fresh):
    before = settled_decisions(envoy)
    fresh.reset()
    for origin in ("https://evil.test", "https://example.com", "http://app.example.com"):
        assert_preflight_refused(preflight(envoy, origin))
    time.sleep(1.2)
    assert fresh.calls() == [] and decisions(envoy) == before


# Oathkeeper's origins go through rs/cors: the first `*` splits an origin into a prefix and a
# suffix, and an origin is allowed when, lowercased, it starts with the prefix and ends with the
# suffix (with zero or more characters between). So *.example.com covers every depth, the bare
# domain only when listed, and nothing with another scheme or a port.
@pytest.mark.parametrize("origin, allowed", [
    ("https://app.example.com", True),
    ("https://a.b.example.com", True),
    ("https://deep.a.b.example.com", True),
    ("HTTPS://App.Example.COM", True),
    ("https://.example.com", True),          # rs/cors: the `*` may stand for nothing
    ("http://localhost:3000", True),
    ("HTTP://LOCALHOST:3000", True),
    ("https://example.com", False),          # not listed
    ("http://app.example.com", False),       # another scheme
    ("https://app.example.com:8443", False),  # a port is part of the origin
    ("https://app.example.com.evil.test", False),
    ("https://evilexample.com", False),
    ("https://app.example.community", False),
    ("http://localhost:3001", False),
    ("null", False),
])
def test_wildcard_origins_follow_oathkeeper(envoy, origin, allowed):
    r = preflight(envoy, origin)
    if allowed:
        assert_cors_for(r, origin)
    else:
        assert_preflight_refused(r)


def test_a_credentialed_get_is_decided_by_portcullis_and_carries_cors_headers(envoy, fresh):
    r = request(envoy.port, "/notes", host="api.example.com", headers=[("Origin", APP), COOKIE])
    seen = upstream_saw(r)
    assert seen["headers"]["x-user-id"] == [ALICE]
    assert seen["headers"]["x-user-email"] == ["alice@example.com"]
    assert [c["path"] for c in fresh.calls()] == ["/sessions/whoami"]
    assert_cors_for(r, APP)
    assert r.header("access-control-expose-headers") == "Content-Type,X-Request-Id"
    # The same request from an origin not allowed is still decided (CORS is the browser's
    # business), but the browser gets nothing that lets the page read the answer.
    r = request(envoy.port, "/notes", host="api.example.com", headers=[("Origin", "https://evil.test"), COOKIE])
    assert upstream_saw(r)["headers"]["x-user-id"] == [ALICE]
    assert_no_cors(r)


def test_portcullis_own_401_carries_the_cors_headers(envoy, fresh):
    r = request(envoy.port, "/notes", host="api.example.com",
                headers=[("Origin", APP), ("Cookie", "ory_kratos_session=expired")])
    assert r.status == 401 and r.json()["error"]["code"] == 401, (r.status, r.body)
    assert len(fresh.calls()) == 1
    assert_cors_for(r, APP)
    assert r.header("access-control-expose-headers") == "Content-Type,X-Request-Id"
    r = request(envoy.port, "/notes", host="api.example.com", headers=[("Origin", "https://evil.test")])
    assert r.status == 401
    assert_no_cors(r)


def test_portcullis_own_302_carries_the_cors_headers(envoy, fresh):
    r = request(envoy.port, "/account", host="www.example.com", headers=[("Origin", APP)])
    assert r.status == 302, (r.status, r.body)
    assert r.header("location").startswith("https://auth.example.com/login?return_to="), r.headers
    assert_cors_for(r, APP)


# --- WebSockets --------------------------------------------------------------------------------------

def handshake(envoy, headers):
    """Sends a WebSocket upgrade through Envoy; returns (status, response headers, socket, reader)."""
    sock = socket.create_connection(("127.0.0.1", envoy.port), timeout=5)
    key = base64.b64encode(os.urandom(16)).decode()
    lines = ["GET /ws/chat HTTP/1.1", "Host: api.example.com", "Upgrade: websocket",
             "Connection: Upgrade", f"Sec-WebSocket-Key: {key}", "Sec-WebSocket-Version: 13"]
    lines += [f"{name}: {value}" for name, value in headers]
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
    reader = sock.makefile("rb")
    status = int(reader.readline().split()[1])
    received = {}
    for _ in range(100):
        line = reader.readline().decode().strip()
        if not line:
            break
        name, _, value = line.partition(":")
        received[name.strip().lower()] = value.strip()
    if status == 101:
        assert received["sec-websocket-accept"] == ws_echo.accept_key(key)
    return status, received, sock, reader


def handshakes(port):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/__calls", timeout=5) as r:
        return json.loads(r.read())["handshakes"]


def test_a_websocket_with_a_session_reaches_the_upstream_with_the_identity(envoy, websocket, fresh):
    # A session of its own: one the other tests checked would come from portcullis's cache.
    cookie = ("Cookie", "ory_kratos_session=valid-carol")
    status, _, sock, reader = handshake(envoy, [("Origin", APP), cookie, ("X-User-Id", "admin")])
    with sock:
        assert status == 101
        opcode, first = ws_echo.read_frame(reader.read)
        seen = json.loads(first)
        assert opcode == ws_echo.TEXT and seen["path"] == "/ws/chat"
        carol = str(uuid.uuid5(uuid.NAMESPACE_URL, "identity/carol"))
        assert seen["headers"]["x-user-id"] == [carol], "portcullis's header, not the client's"
        assert seen["headers"]["x-user-email"] == ["carol@example.com"]
        assert [c["path"] for c in fresh.calls()] == ["/sessions/whoami"]
        # The connection is upgraded both ways: messages echo, the close is answered.
        for message in (b"hello", b"x" * 70000):
            sock.sendall(ws_echo.frame(ws_echo.TEXT, message, mask=os.urandom(4)))
            assert ws_echo.read_frame(reader.read) == (ws_echo.TEXT, message)
        sock.sendall(ws_echo.frame(ws_echo.CLOSE, b"\x03\xe8", mask=os.urandom(4)))
        assert ws_echo.read_frame(reader.read)[0] == ws_echo.CLOSE
        # Only the handshake was checked: the frames never asked Kratos.
        assert len(fresh.calls()) == 1


@pytest.mark.parametrize("cookie", [None, "ory_kratos_session=expired"])
def test_a_websocket_without_a_session_gets_401_and_no_upgrade(envoy, websocket, fresh, cookie):
    before = handshakes(websocket)
    status, received, sock, reader = handshake(envoy, [("Cookie", cookie)] if cookie else [])
    with sock:
        assert status == 401
        assert "sec-websocket-accept" not in received
        assert received.get("upgrade") is None
        body = reader.read(int(received["content-length"]))
        assert json.loads(body)["error"]["code"] == 401
    assert handshakes(websocket) == before, "the upstream never saw the handshake"


# --- the filter order -------------------------------------------------------------------------------

def cors_after_portcullis():
    """envoy/browser.yaml with envoy.filters.http.cors moved after portcullis, where Istio puts it
    (every WasmPlugin phase comes before Istio's CORS filter)."""
    text = (ROOT / "envoy/browser.yaml").read_text()
    start = text.index("                  # First: answers preflights")
    end = text.index("                  - name: envoy.filters.http.wasm")
    block, text = text[start:end], text[:start] + text[end:]
    router = text.index("                  - name: envoy.filters.http.router")
    return text[:router] + block + text[router:]


def test_with_cors_after_portcullis_preflights_and_denials_lose_their_cors_headers(upstream, kratos, websocket, tmp_path):
    require_envoy()
    bootstrap = tmp_path / "cors-after-portcullis.yaml"
    bootstrap.write_text(cors_after_portcullis())
    with envoy_harness.Envoy(None, bootstrap=bootstrap, upstream_port=upstream, kratos_port=kratos.port,
                             values={"WEBSOCKET_PORT": websocket}) as e:
        # The preflight meets the rules first: no rule takes OPTIONS, and portcullis's 404 never
        # passes the CORS filter, so the browser sees a failed preflight.
        r = preflight(e, APP)
        assert r.status == 404 and r.json()["error"]["code"] == 404, (r.status, r.body)
        assert_no_cors(r)
        # portcullis's 401 is a local reply sent before the CORS filter saw the request: the page
        # cannot read it (the browser reports a CORS error instead of the 401).
        r = request(e.port, "/notes", host="api.example.com", headers=[("Origin", APP)])
        assert r.status == 401
        assert_no_cors(r)
        # Only what reaches the upstream gets the headers.
        r = request(e.port, "/notes", host="api.example.com",
                    headers=[("Origin", APP), ("Cookie", "ory_kratos_session=valid-dave")])
        assert upstream_saw(r)["headers"]["x-user-id"] != []
        assert_cors_for(r, APP)
