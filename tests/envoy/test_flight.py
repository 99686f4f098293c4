"""Single-flight across workers through real Envoy (two workers, so two wasm VMs): a burst of
requests for one new session spread over both workers makes one whoami call, the workers that did
not lead waiting on the leader's in-flight marker in shared data; and a wait on another worker's
call is bounded (src/cache/session.rs: SHARED_WAIT_MAX_MS), after which that worker asks itself."""

import threading
import time
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from conftest import request, start_envoy

BURST = 40


def identity(name):
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "identity/" + name))


@pytest.fixture(scope="module")
def envoy(upstream, kratos, jwks):
    with start_envoy("filter-config/play2.yaml", upstream, kratos, jwks, concurrency=2) as e:
        yield e


@pytest.fixture(autouse=True)
def fresh(kratos):
    kratos.reset()


def prom_value(envoy, name, **labels):
    with urllib.request.urlopen(f"http://127.0.0.1:{envoy.admin}/stats/prometheus", timeout=5) as r:
        text = r.read().decode()
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def workers(envoy):
    return [envoy.stat(f"listener.127.0.0.1_{envoy.port}.worker_{n}.downstream_cx_total") for n in (0, 1)]


def burst(envoy, name):
    """BURST requests for one session, each on its own connection, released together."""
    start = threading.Barrier(BURST)
    cookie = [("Cookie", f"ory_kratos_session=valid-{name}")]

    def one(_):
        start.wait()
        return request(envoy.port, "/", headers=cookie)

    with ThreadPoolExecutor(BURST) as pool:
        return list(pool.map(one, range(BURST)))


def assert_all_authenticated(results, name):
    assert [r.status for r in results] == [200] * BURST, [(r.status, r.body[:200]) for r in results]
    for r in results:
        assert r.json()["headers"]["x-user-id"] == [identity(name)]


def test_a_burst_across_two_workers_makes_one_whoami_call(envoy, kratos):
    kratos.control(latency_ms=300)  # the burst arrives while the leader's call is in flight
    before = workers(envoy)
    name = "flight-" + uuid.uuid4().hex[:8]
    results = burst(envoy, name)
    assert_all_authenticated(results, name)
    spread = [now - then for now, then in zip(workers(envoy), before)]
    assert sum(spread) == BURST and min(spread) > 0, f"both workers must get requests: {spread}"
    calls = len(kratos.calls())
    print(f"{BURST} concurrent requests, one new session, 2 workers {spread}: {calls} whoami calls")
    assert calls == 1
    time.sleep(1.5)  # stats are published on the root context's tick
    assert prom_value(envoy, "portcullis_cache_total", cache="session", result="shared_wait") >= 1
    assert prom_value(envoy, "portcullis_cache_total", cache="session", result="shared_wait_expired") == 0


def test_a_wait_on_another_workers_call_is_bounded(envoy, kratos):
    # Slower than the 1 s bound, within the cluster's 2 s timeout: the worker that waits gives
    # up at the bound and asks itself, once (its own requests wait on its call).
    kratos.control(latency_ms=1500)
    name = "slow-" + uuid.uuid4().hex[:8]
    before = workers(envoy)
    began = time.monotonic()
    results = burst(envoy, name)
    took = time.monotonic() - began
    assert_all_authenticated(results, name)
    spread = [now - then for now, then in zip(workers(envoy), before)]
    assert min(spread) > 0, f"both workers must get requests: {spread}"
    assert len(kratos.calls()) == 2, "one call per worker after the bound"
    assert took < 4.0, took
    time.sleep(1.5)
    assert prom_value(envoy, "portcullis_cache_total", cache="session", result="shared_wait_expired") >= 1
