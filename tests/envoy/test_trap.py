"""A trapped VM in real Envoy 1.40, per `failure_policy`, under load from several connections.

The test build of the filter (`make build-trap`: cargo feature `test-trap`, never in the release
.wasm) traps when a request carries `x-portcullis-trap`. One worker (so one VM), four clients
sending valid session cookies from a small pool, invalid cookies, no credentials and JWTs:

  FAIL_CLOSED  after the trap nothing is forwarded again (every answer 503);
  FAIL_RELOAD  nothing is forwarded while the VM is down, then a new VM serves again, and the time
               that takes is printed (envoy/README.md quotes it); no request is wrongly allowed and
               the new VM's extra Kratos and JWKS calls are bounded;
  FAIL_OPEN    after the trap the filter is skipped: requests reach the upstream unauthenticated.
"""

import re
import threading
import time

import pytest
import yaml

import envoy_harness
from conftest import ROOT, request, require_envoy, start_envoy
from load import Load, Outcome, forwarded_view, send
from mint import mint

CONFIG = """
access_rules:
  rules:
    - id: web
      match: { url: "http://echo.example.com/<.*>", methods: [GET] }
      authenticators: [{ handler: cookie_session }]
      authorizer: { handler: allow }
      mutators: [{ handler: header }]
    - id: machines
      match: { url: "http://api.example.com/<.*>", methods: [GET] }
      authenticators: [{ handler: jwt }]
      authorizer: { handler: allow }
      mutators: [{ handler: header }]
authenticators:
  cookie_session:
    enabled: true
    config:
      check_session_url: http://kratos-public.auth/sessions/whoami
      only: [ory_kratos_session]
      preserve_path: true
      subject_from: identity.id
      cache: { enabled: true, ttl: 60s }
  jwt:
    enabled: true
    config:
      jwks_urls: [http://idp.test/keys]
      allowed_algorithms: [RS256]
      jwks_ttl: 60s
authorizers: { allow: { enabled: true } }
mutators:
  header: { enabled: true, config: { headers: { x-user-id: "{{ print .Subject }}" } } }
errors: { fallback: [json] }
clusters:
  "http://kratos-public.auth": { cluster: kratos, timeout: 500ms }
  "http://idp.test": { cluster: jwks, timeout: 500ms }
"""

SHIPPED = ["minimal.yaml", "kratos.yaml", "jwt.yaml", "ecds-portcullis.yaml"]


def shipped_policy(name):
    """failure_policy and reload_config of the wasm PluginConfig in envoy/<name>."""
    text = re.sub(r"\$\{[A-Z0-9_]+\}", "0", (ROOT / "envoy" / name).read_text())
    found = []

    def walk(node):
        if isinstance(node, dict):
            if "failure_policy" in node:
                found.append({k: node.get(k) for k in ("failure_policy", "reload_config")})
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)
    walk(yaml.safe_load(text))
    assert len(found) == 1, (name, found)
    return found[0]


# What envoy/*.yaml ship (envoy/README.md, "When the VM fails"); the FAIL_RELOAD test runs it.
RELOAD = shipped_policy("kratos.yaml")
# A request parked in a trapped VM is never answered by it: Envoy ends it here (408).
HCM_TIMEOUT_S = 2
HCM = {"request_timeout": f"{HCM_TIMEOUT_S}s"}
POOL = 8
CLIENTS = 4
TRAP = [("x-portcullis-trap", "1")]


identity = envoy_harness.identity


class Mix:
    """Four kinds of request; `expect` is the x-user-id a correct filter forwards, None when it
    must not forward at all."""

    def __init__(self):
        now = int(time.time())
        self.jwts = [(f"m{i}", mint({"sub": f"m{i}", "iat": now, "exp": now + 600})) for i in range(4)]

    def __call__(self, n):
        kind = n % 4
        if kind == 0:
            name = f"pool{n // 4 % POOL}"
            return ("valid", "echo.example.com", "/notes", {"Cookie": "ory_kratos_session=valid-" + name},
                    identity(name))
        if kind == 1:
            return "invalid", "echo.example.com", "/notes", {"Cookie": f"ory_kratos_session=bad-{n}"}, None
        if kind == 2:
            return "none", "echo.example.com", "/notes", {}, None
        sub, token = self.jwts[n // 4 % len(self.jwts)]
        return "jwt", "api.example.com", "/things", {"Authorization": "Bearer " + token}, sub


def forwarded(o):
    return o.forwarded is not None


def wrongly_allowed(o):
    """Forwarded, but not as a correct filter would have: without a credential, or as someone else."""
    return forwarded(o) and (o.tag is None or o.seen("x-user-id") != o.tag)


def pool_calls(kratos):
    """Whoami calls for the pool's sessions (counted, never printed)."""
    return sum(1 for c in kratos.calls()
               if "ory_kratos_session=valid-pool" in c["headers"].get("cookie", ""))


@pytest.fixture
def started(upstream, kratos, jwks):
    """Starts Envoy with the trap build and `options`; returns it ready, its caches warm and the
    stand-ins' counts reset."""
    require_envoy()
    if not envoy_harness.TRAP_WASM.exists():
        pytest.fail(f"{envoy_harness.TRAP_WASM} is missing: run `make build-trap`")
    kratos.reset()
    jwks.reset()
    envoys = []

    def start(options):
        e = envoy_harness.Envoy(CONFIG, upstream_port=upstream, kratos_port=kratos.port,
                                jwks_port=jwks.port, wasm=envoy_harness.TRAP_WASM, wasm_options=options,
                                hcm_options=HCM)
        envoys.append(e)
        e.__enter__()
        mix = Mix()
        deadline = time.monotonic() + 10
        while request(e.port, "/things", host="api.example.com",
                      headers=[("Authorization", "Bearer " + mix.jwts[0][1])]).status != 200:
            assert time.monotonic() < deadline, "no JWKS keys"
            time.sleep(0.1)
        for i in range(POOL):
            assert request(e.port, "/", headers=[("Cookie", f"ory_kratos_session=valid-pool{i}")]).status == 200
        kratos.reset()
        jwks.reset()
        return e, mix

    yield start
    for e in envoys:
        e.__exit__(None, None, None)


def trap(envoy):
    """The trapping request, on its own connection; Envoy answers it 503 whatever the policy."""
    assert request(envoy.port, "/notes", headers=TRAP).status == 503
    return time.monotonic()


def probe(envoy, mix, n):
    """One request of the mix on a fresh connection, as an Outcome (so a client stuck behind the
    trap does not hide what a new request meets)."""
    kind, host, path, headers, tag = mix(n)
    started = time.monotonic()
    status, body, _ = send([None], envoy.port, "GET", host, path, headers, timeout=5)
    return Outcome(kind, started, time.monotonic(), status, forwarded_view(status, body), tag=tag)


def run(envoy, mix, before, after, until=None, safe=True):
    """Load for `before` seconds, a trap, then load and a probe every 50 ms for up to `after`
    seconds (or until `until(outcomes since the trap)`). Returns (in flight at the trap, sent
    after it, the trap's time)."""
    probes = []
    with Load(envoy.port, mix, clients=CLIENTS, seconds=before + after + 2, timeout=5) as load:
        time.sleep(before)
        t0 = trap(envoy)
        deadline = t0 + after
        n = 0
        while time.monotonic() < deadline:
            probes.append(probe(envoy, mix, n))
            n += 1
            if until and until([o for o in load.snapshot() + probes if o.started > t0]):
                break
            time.sleep(0.05)
        load.stop()
    outcomes = load.snapshot()
    early = [o for o in outcomes if o.finished < t0]
    assert early and all(forwarded(o) == (o.tag is not None) and not wrongly_allowed(o) for o in early), \
        "the filter was wrong before the trap"
    in_flight = [o for o in outcomes if o.started < t0 < o.finished]
    late = sorted([o for o in outcomes if o.started > t0] + probes, key=lambda o: o.finished)
    # A request parked in the trapped VM (behind a callout, or queued behind the trapping request)
    # is never answered by the filter: Envoy ends it at the connection manager's request_timeout
    # (408), or resets it when the VM is replaced. It is never forwarded by the dead VM; one the
    # live VM had already forwarded may still come back 200 with its identity.
    assert not safe or not [o for o in in_flight + late if wrongly_allowed(o)], \
        [(o.kind, o.status) for o in in_flight + late if wrongly_allowed(o)][:5]
    assert all(o.status in (0, 408, 503) or forwarded(o) for o in in_flight), \
        sorted({(o.kind, o.status) for o in in_flight})
    print(f"  in flight at the trap: {len(in_flight)}, answered "
          f"{sorted(o.status for o in in_flight)} after {[round(o.finished - t0, 1) for o in in_flight]} s")
    return in_flight, late, t0


def test_fail_closed_never_forwards_after_a_trap(started):
    envoy, mix = started({"failure_policy": "FAIL_CLOSED"})
    _, late, _ = run(envoy, mix, before=1, after=4)
    statuses = {o.status for o in late}
    print(f"FAIL_CLOSED: {len(late)} requests in 4 s after the trap, statuses {sorted(statuses)}")
    assert len(late) >= 20
    assert not [o for o in late if forwarded(o)], "a request was forwarded after the trap"
    assert statuses == {503}, statuses
    assert envoy.stat("wasm.portcullis.vm_reload_success") == 0


def test_fail_reload_forwards_nothing_while_down_then_serves_again(started, kratos, jwks):
    envoy, mix = started(RELOAD)
    recoveries = []
    for round_ in range(2):
        def served(late):
            """A second of service after the first forwarded request."""
            done = [o for o in late if forwarded(o)]
            return bool(done) and max(o.started for o in done) > min(o.finished for o in done) + 1
        _, late, t0 = run(envoy, mix, before=0.5, after=8, until=served)
        # Served again: the first answer a working filter gave (forwarded, or its own 401).
        first = next((o for o in late if o.status not in (503, 0)), None)
        assert first is not None, "nothing was served again within 8 s"
        down = [o for o in late if o.finished < first.finished]
        recoveries.append(first.finished - t0)
        print(f"FAIL_RELOAD trap {round_ + 1}: served again {recoveries[-1]:.2f} s after the trap; "
              f"{len(down)} requests answered {sorted({o.status for o in down})} meanwhile; {len(late)} in all")
        # Envoy's backoff is jittered (uniform below 1 s, then below 2 s, ...): a request may find
        # the new VM at once.
        assert {o.status for o in down} <= {503}, sorted({(o.kind, o.status) for o in down})
        # Once served again, every answer is right; a JWT may still meet the new VM's 503 until its
        # first JWKS fetch is back.
        served_after = [o for o in late if o.started >= first.finished + 0.5]
        assert served_after and all(forwarded(o) == (o.tag is not None) for o in served_after
                                    if not (o.kind == "jwt" and o.status == 503)), \
            sorted({(o.kind, o.status) for o in served_after})
    # Envoy's backoff: 1 s base, jittered and doubling for a VM that keeps failing, at most 10 s.
    assert recoveries[0] < 5 and recoveries[1] < 10, recoveries
    assert envoy.stat("wasm.portcullis.vm_reload_success") == 2
    # What the two reloads cost. A new VM starts with empty per-VM caches (verified JWTs,
    # hydrations), but adopts the key set and finds the sessions in Envoy's shared data, which
    # outlives a VM: at most one JWKS fetch and one whoami call per cached session per reload
    # (measured: none).
    extra_jwks, extra_kratos = jwks.fetches(), pool_calls(kratos)
    print(f"FAIL_RELOAD: after 2 reloads, {extra_jwks} JWKS fetches and {extra_kratos} whoami calls "
          f"for the {POOL} cached sessions")
    assert extra_jwks <= 2, extra_jwks
    assert extra_kratos <= 2 * POOL, extra_kratos


def test_fail_open_forwards_unauthenticated_after_a_trap(started):
    envoy, mix = started({"failure_policy": "FAIL_OPEN"})
    _, late, _ = run(envoy, mix, before=1, after=2, safe=False)
    unauthenticated = [o for o in late if forwarded(o) and o.tag is None]
    print(f"FAIL_OPEN: {len(unauthenticated)} of {len(late)} requests after the trap reached the upstream "
          "with no credential")
    assert unauthenticated, "FAIL_OPEN should have skipped the filter"
    # The filter is skipped altogether: no identity header is added for anyone.
    assert all(o.seen("x-user-id") is None for o in late if forwarded(o))


def test_every_shipped_configuration_reloads_a_failed_vm():
    """The default this file measures is the one envoy/ and envoy/istio/ ship."""
    assert RELOAD == {"failure_policy": "FAIL_RELOAD",
                      "reload_config": {"backoff": {"base_interval": "1s", "max_interval": "10s"}}}
    for name in SHIPPED:
        assert shipped_policy(name) == RELOAD, name
    plugin = yaml.safe_load((ROOT / "envoy/istio/wasmplugin.yaml").read_text())
    assert plugin["spec"]["failStrategy"] == "FAIL_RELOAD"


def test_the_release_build_ignores_the_trap_header(upstream, kratos, jwks):
    """`make build` has no test-trap feature: the header is just a header there."""
    kratos.reset()
    with start_envoy(CONFIG, upstream, kratos, jwks) as e:
        for _ in range(3):
            r = request(e.port, "/notes", headers=TRAP + [("Cookie", "ory_kratos_session=valid-pool0")])
            assert r.status == 200 and r.json()["headers"]["x-user-id"] == [identity("pool0")]
        assert "unreachable" not in e.log() and e.stat("wasm.portcullis.vm_reload_success") == 0


def test_a_request_parked_behind_a_callout_when_the_vm_traps_is_never_forwarded(started, kratos):
    """Its callout answer goes to a dead VM: the request is ended by the connection manager's
    request_timeout (2 s here), never forwarded, and the new VM serves the next one."""
    envoy, _ = started(RELOAD)
    kratos.control(latency_ms=1500)
    try:
        answer = {}

        def parked():
            started_at = time.monotonic()
            r = request(envoy.port, "/notes", headers=[("Cookie", "ory_kratos_session=valid-parked")])
            answer.update(status=r.status, body=r.body, seconds=time.monotonic() - started_at)

        thread = threading.Thread(target=parked, daemon=True)
        thread.start()
        deadline = time.monotonic() + 5
        while not kratos.calls():  # the whoami call is out: the request is parked
            assert time.monotonic() < deadline, "the request never reached Kratos"
            time.sleep(0.02)
        trap(envoy)
        thread.join(timeout=15)
        assert not thread.is_alive(), "the parked request was never answered"
        print(f"parked request: {answer['status']} after {answer['seconds']:.2f} s")
        assert answer["status"] in (503, 408) and b'"headers"' not in answer["body"], answer
        assert answer["seconds"] < HCM_TIMEOUT_S + 1.5, answer
    finally:
        kratos.control(latency_ms=0)
    deadline = time.monotonic() + 5
    while request(envoy.port, "/notes", headers=[("Cookie", "ory_kratos_session=valid-pool1")]).status != 200:
        assert time.monotonic() < deadline, "no new VM"
        time.sleep(0.1)
