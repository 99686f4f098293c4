"""Play 3 through real Envoy, beyond what its table says (tests/scenarios/jwt-play3.yaml, run in
Envoy by test_tables.py): the verification cache, key rotation over time, keys fetched once for
two workers, and waiting for the first keys."""

import re
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from conftest import request, start_envoy, upstream_saw
from mint import azure_mi, mint

HOST = "api.example.com"


@pytest.fixture(scope="module")
def envoy(upstream, kratos, jwks):
    jwks.reset()
    with start_envoy("filter-config/play3.yaml", upstream, kratos, jwks) as e:
        yield e


@pytest.fixture(autouse=True)
def fresh(kratos):
    kratos.reset()


def call(envoy, token, path="/machines/vm-1", **kw):
    return request(envoy.port, path, host=HOST, headers=[("Authorization", "Bearer " + token)], **kw)


def reason(response):
    assert response.status == 401, (response.status, response.body)
    return response.json()["error"]["reason"]


def test_a_repeated_token_is_served_from_the_cache(envoy):
    token = mint(azure_mi(sub="repeat"))
    for _ in range(20):
        assert upstream_saw(call(envoy, token))["headers"]["x-user-id"] == ["repeat"]


def test_signatures_are_checked_by_envoys_boringssl(envoy):
    """Envoy 1.40 has the verify_signature and sign foreign functions: the known-answer probe at
    configure passes and the host backend checks RS* and ES* (the jwt-play3 table's algorithm cases ran on it too)."""
    for alg in ["RS256", "ES256", "ES384"]:
        token = mint({"sub": "host-" + alg, "scp": ["machines"], "exp": int(time.time()) + 600}, alg=alg)
        assert upstream_saw(call(envoy, token, path="/scoped/x"))["headers"]["x-user-id"] == ["host-" + alg]
        forged = mint({"sub": "host-" + alg, "scp": ["machines"], "exp": int(time.time()) + 600}, alg=alg, tamper=True)
        assert reason(call(envoy, forged, path="/scoped/x")) == "the token signature is invalid"
    stats = envoy.stats("portcullis_crypto_backend")
    assert re.search(r"backend=\.=host;\.;portcullis_crypto_backend: 1\b", stats), stats
    assert re.search(r"backend=\.=rust;\.;portcullis_crypto_backend: 0\b", stats), stats
    assert "portcullis: signatures: host backend" in envoy.log(), envoy.log()


def test_a_new_key_is_accepted_after_a_refetch_and_a_removed_one_is_refused(upstream, kratos, jwks):
    jwks.reset()
    jwks.control(file="jwks-rotated.json")
    config = envoy_config_with_ttl("2s")
    with start_envoy(config, upstream, kratos, jwks) as e:
        assert upstream_saw(call(e, mint(azure_mi(sub="old"), key="rsa-2")))["headers"]["x-user-id"] == ["old"]
        jwks.control(file="jwks.json")
        assert upstream_saw(call(e, mint(azure_mi(sub="new"))))["headers"]["x-user-id"] == ["new"], \
            "rsa-1 appeared: the unknown kid refetched"
        token = mint(azure_mi(sub="rotating"))
        assert upstream_saw(call(e, token))["headers"]["x-user-id"] == ["rotating"]
        jwks.control(file="jwks-rotated.json")
        time.sleep(3)  # past the 2 s jwks_ttl: the background refresh drops rsa-1
        assert "could not be found" in reason(call(e, token)), "the cached token's key left the JWKS"


def envoy_config_with_ttl(ttl):
    from conftest import ROOT
    return (ROOT / "filter-config/play3.yaml").read_text().replace("jwks_ttl: 30s", f"jwks_ttl: {ttl}")


def test_two_workers_fetch_the_keys_once(upstream, kratos, jwks):
    jwks.reset()
    with start_envoy("filter-config/play3.yaml", upstream, kratos, jwks, concurrency=2) as e:
        tokens = [mint(azure_mi(sub=f"m{i}")) for i in range(50)]
        with ThreadPoolExecutor(4) as pool:
            statuses = list(pool.map(lambda i: call(e, tokens[i % 50]).status, range(400)))
        assert statuses == [200] * 400
        fetches = jwks.fetches()
        print(f"400 requests over 2 workers: {fetches} JWKS fetches")
        assert fetches == 1


def test_before_the_first_keys_requests_wait_then_503_after_jwks_max_wait(upstream, kratos, jwks):
    jwks.reset()
    jwks.control(mode="down")
    try:
        with start_envoy("filter-config/play3.yaml", upstream, kratos, jwks) as e:
            started = time.time()
            r = call(e, mint(azure_mi()))
            waited = time.time() - started
            assert r.status == 503, (r.status, r.body)
            assert 0.9 <= waited < 3, f"answered after {waited:.2f} s; jwks_max_wait is 1 s"
            jwks.control(mode="normal")
            time.sleep(2.5)  # the 1 s, then 2 s backoff
            assert upstream_saw(call(e, mint(azure_mi(sub="later"))))["headers"]["x-user-id"] == ["later"]
    finally:
        jwks.reset()
