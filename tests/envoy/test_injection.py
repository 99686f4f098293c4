"""Header injection through real Envoy: a session store whose identity traits carry CR, LF and
NUL never gets a header split or smuggled upstream. The upstream here records the raw bytes of
each request head, so a smuggled `x-admin` line would be seen even if a parser merged it.
Redirects with hostile input are checked too; the status and JSON of each hostile case (and a
hostile x-request-id in an error body) are tests/scenarios/injection-headers.yaml, in Envoy too."""

import socket
import threading
import urllib.parse
from http.server import ThreadingHTTPServer

import pytest

from conftest import request, start_envoy
import loopback

# The traits each session cookie value gets from the hostile store.
HOSTILE = {
    "plain": "alice@example.com",
    "crlf": "a@example.com\r\nx-admin: 1",
    "lf": "a@example.com\nx-admin: 1",
    "cr": "a@example.com\rx-admin: 1",
    "nul": "a@example.com\x00x-admin: 1",
}

CONFIG = """
access_rules:
  rules:
    - id: echo
      match: { url: "http://echo.example.com/<.*>", methods: [GET] }
      authenticators: [{ handler: cookie_session }]
      authorizer: { handler: allow }
      mutators: [{ handler: header }]
    - id: login
      match: { url: "http://login.example.com/<.*>", methods: [GET] }
      authenticators: [{ handler: unauthorized }]
      authorizer: { handler: allow }
      mutators: [{ handler: noop }]
      errors: [{ handler: redirect, config: { to: "https://auth.example.com/login", return_to_query_param: return_to } }]
authenticators:
  unauthorized: { enabled: true }
  cookie_session:
    enabled: true
    config: { check_session_url: "http://kratos-public.auth/sessions/whoami", subject_from: identity.id, extra_from: "@this", cache: { enabled: false } }
authorizers: { allow: { enabled: true } }
mutators:
  noop: { enabled: true }
  header: { enabled: true, config: { headers: { x-user-id: "{{ print .Subject }}", x-user-email: "{{ print .Extra.identity.traits.email }}" } } }
errors:
  fallback: [json]
  handlers: { json: { enabled: true, config: { verbose: true } }, redirect: { enabled: true, config: { to: "https://auth.example.com/login" } } }
clusters: { "http://kratos-public.auth": kratos }
"""


class Store(loopback.Handler):
    def do_GET(self):
        token = ""
        for pair in (self.headers.get("Cookie") or "").split(";"):
            name, _, value = pair.strip().partition("=")
            if name == "ory_kratos_session":
                token = value
        if token not in HOSTILE:
            return self.reply(401, {"error": {"code": 401}})
        self.reply(200, {"identity": {"id": "u-" + token, "traits": {"email": HOSTILE[token]}}})


class RawUpstream:
    """Answers 200 and keeps the raw head of every request."""

    def __init__(self):
        self.heads = []
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.5)
        self.port = self.sock.getsockname()[1]
        self.stop = False
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while not self.stop:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            with conn:
                conn.settimeout(2)
                data = b""
                try:
                    while b"\r\n\r\n" not in data and len(data) < 1 << 20:
                        chunk = conn.recv(65536)
                        if not chunk:
                            break
                        data += chunk
                except OSError:
                    pass
                self.heads.append(data)
                body = b"{}"
                conn.sendall(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\n"
                             b"connection: close\r\n\r\n" + body)

    def close(self):
        self.stop = True
        self.thread.join(timeout=5)
        self.sock.close()


@pytest.fixture(scope="module")
def raw_upstream():
    u = RawUpstream()
    yield u
    u.close()


@pytest.fixture(scope="module")
def envoy(raw_upstream):
    server = ThreadingHTTPServer(("127.0.0.1", 0), Store)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    store = type("S", (), {"port": server.server_address[1]})()
    try:
        with start_envoy(CONFIG, raw_upstream.port, store) as e:
            yield e
    finally:
        server.shutdown()


def session(token):
    return [("Cookie", f"ory_kratos_session={token}")]


def test_a_plain_trait_is_forwarded(envoy, raw_upstream):
    raw_upstream.heads.clear()
    r = request(envoy.port, "/a", headers=session("plain"))
    assert r.status == 200
    head = raw_upstream.heads[-1].lower()
    assert b"\r\nx-user-email: alice@example.com\r\n" in head
    assert b"x-user-id: u-plain" in head


@pytest.mark.parametrize("token", ["crlf", "lf", "cr", "nul"])
def test_a_trait_with_control_bytes_is_a_500_and_never_reaches_the_upstream(envoy, raw_upstream, token):
    raw_upstream.heads.clear()
    r = request(envoy.port, "/a", headers=session(token))
    assert r.status == 500, r.body
    assert r.json()["error"]["code"] == 500
    assert "x-admin" not in r.headers
    assert raw_upstream.heads == [], "nothing was forwarded"


def test_no_upstream_head_ever_carried_a_smuggled_header(envoy, raw_upstream):
    raw_upstream.heads.clear()
    for token in HOSTILE:
        request(envoy.port, "/a", headers=session(token))
    assert len(raw_upstream.heads) == 1, "only the plain session went upstream"
    assert all(b"x-admin" not in h.lower() for h in raw_upstream.heads)


@pytest.mark.parametrize("path", ["//evil.com", "/%2F%2Fevil.com", "/%2f%2fevil.com/x", "/.//evil.com"])
def test_the_redirect_stays_on_its_own_origin_and_return_to_names_the_matched_host(envoy, path):
    r = request(envoy.port, path, host="login.example.com")
    assert r.status == 302, (r.status, r.body)
    location = urllib.parse.urlsplit(r.header("location"))
    assert (location.scheme, location.netloc, location.path) == ("https", "auth.example.com", "/login")
    return_to = urllib.parse.parse_qs(location.query)["return_to"][0]
    target = urllib.parse.urlsplit(return_to)
    assert target.netloc == "login.example.com", return_to
    assert not target.path.startswith("//"), return_to


@pytest.mark.parametrize("path", ["/\\evil.com", "/%5cevil.com", "https:evil.com", "/%252F%252Fevil.com"])
def test_crafted_redirect_paths_are_refused_before_any_handler(envoy, path):
    r = request(envoy.port, path, host="login.example.com")
    assert r.status == 400, (r.status, r.body)
    assert "location" not in r.headers
