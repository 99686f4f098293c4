"""The OAuth 2.0 and policy handlers through real Envoy (filter-config/oauth2.yaml): introspection
with pre_authorization's chained grant, client credentials, the `remote` authorizer reading the
body under allow_on_headers_stop_iteration, an id_token the upstream verifies with the key the
filter publishes, and an error handler chosen by the client's address."""

import base64
import json
import urllib.request

import jwt
import pytest

from conftest import ROOT, request, serve, start_envoy, upstream_saw


@pytest.fixture(scope="module")
def idp():
    yield from serve("oauth2.py")


@pytest.fixture(scope="module", params=["host", "rust"])
def envoy(request, upstream, idp):  # pytest's `request` here, not conftest's helper
    """Every test twice: id_token signed by Envoy's `sign`, then in Rust (`envoy.host_crypto:
    false`, as on a proxy without it)."""
    text = (ROOT / "filter-config/oauth2.yaml").read_text()
    if request.param == "rust":
        text = text.replace("  allow_on_headers_stop_iteration: true\n",
                            "  allow_on_headers_stop_iteration: true\n  host_crypto: false\n", 1)
    with start_envoy(text, upstream, authz_port=idp,
                     wasm_options={"allow_on_headers_stop_iteration": True}) as e:
        stats = e.stats("portcullis_crypto_backend")
        assert f"backend=.={request.param};.;portcullis_crypto_backend: 1" in stats, stats
        yield e


def calls(port):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/__calls", timeout=5) as r:
        return json.loads(r.read())


def test_introspection_after_a_grant_of_our_own(envoy, idp):
    r = request(envoy.port, "/orders", host="api.example.com",
                headers=[("Authorization", "Bearer opaque-alice")])
    assert upstream_saw(r)["headers"]["x-user-id"] == ["alice"]
    made = calls(idp)
    grant = next(c for c in made if c["path"] == "/oauth2/token")
    assert grant["headers"]["authorization"] == "Basic " + base64.b64encode(b"portcullis:pc-secret").decode()
    intro = next(c for c in made if c["path"] == "/oauth2/introspect")
    assert intro["body"] == "token=opaque-alice"
    assert intro["headers"]["authorization"].startswith("Bearer at-")


def test_an_inactive_token_is_a_401(envoy):
    r = request(envoy.port, "/orders", host="api.example.com",
                headers=[("Authorization", "Bearer opaque-revoked")])
    assert r.status == 401
    assert r.json()["error"]["reason"] == "Access token is not active"


def test_client_credentials(envoy):
    good = "Basic " + base64.b64encode(b"client-1:s3cret").decode()
    bad = "Basic " + base64.b64encode(b"client-1:nope").decode()
    r = request(envoy.port, "/jobs", host="machines.example.com", headers=[("Authorization", good)])
    assert upstream_saw(r)["headers"]["x-user-id"] == ["client-1"]
    assert request(envoy.port, "/jobs", host="machines.example.com",
                   headers=[("Authorization", bad)]).status == 401


def test_remote_reads_the_body_and_id_token_signs(envoy, idp):
    body = b'{"file": "report.pdf", "bytes": "' + b"x" * 20000 + b'"}'
    r = request(envoy.port, "/files", host="uploads.example.com", method="POST",
                headers=[("Content-Type", "application/json")], body=body)
    saw = upstream_saw(r)
    assert saw["headers"]["x-policy"] == ["scanned"]
    policy = [c for c in calls(idp) if c["path"] == "/policy"][-1]
    assert policy["body"].encode() == body, "the policy service got the whole body"
    assert policy["headers"]["content-type"] == "application/json"
    token = saw["headers"]["authorization"][0].removeprefix("Bearer ")
    keys = request(envoy.port, "/.well-known/jwks.json", host="uploads.example.com")
    assert keys.status == 200
    key = jwt.PyJWK(keys.json()["keys"][0])
    claims = jwt.decode(token, key=key, algorithms=["ES256"], audience="uploads")
    assert claims["sub"] == "guest"
    assert claims["iss"] == "https://portcullis.example.com/"


def test_remote_denies_before_anything_reaches_the_upstream(envoy):
    r = request(envoy.port, "/files", host="uploads.example.com", method="POST",
                headers=[("Content-Type", "text/plain")], body=b"this is malware")
    assert r.status == 403
    assert r.json()["error"]["reason"] == "the remote authorizer answered 403", "answered by the filter"


def test_the_error_handler_sees_the_client_address(envoy):
    r = request(envoy.port, "/", host="intranet.example.com")
    assert r.status == 302, r.body
    assert r.header("location") == "https://login.example.com/"
