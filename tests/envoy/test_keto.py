"""remote_json against a Keto-compatible stand-in through real Envoy: the check payload is
rendered from the session and the path, Keto's 200 allows and its 403 denies."""

import json
import urllib.request

import pytest

from conftest import request, start_envoy, upstream_saw


@pytest.fixture(scope="module")
def envoy(upstream, kratos, keto):
    with start_envoy("filter-config/keto.yaml", upstream, kratos, keto_port=keto) as e:
        yield e


def keto_calls(port):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/__calls", timeout=5) as r:
        return json.loads(r.read())


def test_keto_allows_the_owner(envoy, keto):
    r = request(envoy.port, "/files/report-1", host="files.example.com",
                headers=[("Cookie", "ory_kratos_session=valid-alice")])
    check = keto_calls(keto)[-1]
    assert upstream_saw(r)["headers"]["x-user-id"] == ["alice"], check
    assert check["body"] == {"namespace": "files", "object": "report-1", "relation": "view",
                             "subject_id": "user:alice"}
    assert check["headers"]["content-type"] == "application/json"


def test_keto_denies_others(envoy):
    r = request(envoy.port, "/files/report-1", host="files.example.com",
                headers=[("Cookie", "ory_kratos_session=valid-bob")])
    assert r.status == 403
    assert r.json()["error"]["reason"] == "the remote_json authorizer answered 403"


def test_a_guest_is_denied(envoy):
    assert request(envoy.port, "/files/report-1", host="files.example.com").status == 403
