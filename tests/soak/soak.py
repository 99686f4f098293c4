#!/usr/bin/env python3
"""Memory and correctness soak: Envoy with 2 workers and portcullis under mixed load on loopback,
with Kratos faults every few seconds. Bounded in requests and time; prints a table and exits
non-zero when a request was wrongly allowed, a wasm VM failed, or Envoy's RSS grew more than
--max-growth percent between --baseline seconds and the end.

Load (weights): valid session cookies from a small pool (cached) and unique ones, invalid
cookies, no cookie (guest), a protected path without identity, repeated and unique JWTs signed
with the TEST keys, forged JWTs, and hosts no rule matches. The echo upstream answers with what
reached it, so every forwarded request is checked: an invalid credential that reached it with a
non-guest x-user-id, a valid one with another identity, or the protected path without one, is
wrongly allowed.

With --tiny-caches the session cache holds 20 entries per worker (`cache.max_entries`, the only
per-VM cache bound the configuration sets: the verified-JWT, hydrator, grant and id_token caches
are fixed at 10,000 entries / 16 MiB per VM, and the sessions shared between workers at 4,096
shared-data slots), --prefill first sends that many distinct valid sessions so the shared slots
are full before the baseline, and the run fails unless the session cache's eviction counter moved
after the baseline: memory bounded by the configuration, not by the traffic.

Usage: make soak (10 min) / make soak-quick (60 s), or
  .venv/bin/python tests/soak/soak.py --duration 600 --baseline 60 [--max-requests N] [--json F]
  .venv/bin/python tests/soak/soak.py --duration 60 --baseline 25 --tiny-caches --prefill 5000
"""

import argparse
import http.client
import itertools
import json
import random
import re
import sys
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests/support"))
import envoy_harness  # noqa: E402
from load import Load as Clients  # noqa: E402
from mint import mint  # noqa: E402

CONFIG = """
access_rules:
  rules:
    - id: web
      match: { url: "http://echo.example.com/<.*>", methods: [GET] }
      authenticators:
        - handler: cookie_session
        - handler: anonymous
      authorizer: { handler: allow }
      mutators: [{ handler: header }]
    - id: admin
      match: { url: "http://admin.example.com/<.*>", methods: [GET] }
      authenticators: [{ handler: cookie_session }]
      authorizer: { handler: allow }
      mutators: [{ handler: header }]
    - id: machines
      match: { url: "http://api.example.com/<.*>", methods: [GET] }
      authenticators: [{ handler: jwt }]
      authorizer: { handler: allow }
      mutators: [{ handler: header }]
authenticators:
  anonymous: { enabled: true, config: { subject: guest } }
  cookie_session:
    enabled: true
    config:
      check_session_url: http://kratos-public.auth/sessions/whoami
      only: [ory_kratos_session]
      preserve_path: true
      subject_from: identity.id
      # Small, so the cache is full (its memory at its bound) well before the RSS baseline.
      cache: { enabled: true, ttl: 5s, max_entries: 300 }
  jwt:
    enabled: true
    config:
      jwks_urls: [http://idp.test/keys]
      allowed_algorithms: [RS256, ES256]
      jwks_ttl: 10s
authorizers: { allow: { enabled: true } }
mutators:
  header: { enabled: true, config: { headers: { x-user-id: "{{ print .Subject }}" } } }
errors: { fallback: [json] }
clusters:
  "http://kratos-public.auth": { cluster: kratos, timeout: 500ms }
  "http://idp.test": { cluster: jwks, timeout: 500ms }
"""

# Kratos modes, each held for --fault-every seconds, normal in between. 10 MiB answers are left to
# tests/envoy/test_faults.py: four of them at once raise Envoy's allocator high-water mark by
# megabytes in steps, which would hide a leak's slope here (a first 10-minute run: +5.6 MiB).
FAULTS = ["reset", "hang", "garbage", "garbage-http", "flap", "down"]
VM_FAILURE = re.compile(r"panicked|VM failed|failed: Uncaught|RuntimeError|unreachable executed")


identity = envoy_harness.identity


class Tally:
    def __init__(self):
        self.lock = threading.Lock()
        self.requests = 0
        self.statuses = {}
        self.wrongly_allowed = []
        self.unexpected = {}
        self.errors = 0

    def add(self, kind, status, wrong=None, unexpected=False):
        with self.lock:
            self.requests += 1
            self.statuses[status] = self.statuses.get(status, 0) + 1
            if wrong:
                self.wrongly_allowed.append(wrong)
            if unexpected:
                key = f"{kind}:{status}"
                self.unexpected[key] = self.unexpected.get(key, 0) + 1


def send(conn_box, port, path, host, headers):
    """One request on the thread's keep-alive connection (reopened after an error)."""
    for attempt in range(2):
        if conn_box[0] is None:
            conn_box[0] = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn = conn_box[0]
        try:
            conn.request("GET", path, headers={"Host": host, **headers})
            r = conn.getresponse()
            body = r.read()
            if r.getheader("connection", "").lower() == "close":
                conn.close()
                conn_box[0] = None
            return r.status, body
        except (OSError, http.client.HTTPException):
            conn.close()
            conn_box[0] = None
            if attempt:
                raise
    raise AssertionError("unreachable")


def seen_id(status, body):
    """The x-user-id the upstream received, or None when the request did not reach it."""
    if status != 200:
        return None
    ids = json.loads(body)["headers"].get("x-user-id", [])
    return ids[0] if ids else ""


class Load:
    """The request mix. Each kind returns (host, path, headers, judge) where judge(status, id)
    says (wrongly allowed?, unexpected?)."""

    def __init__(self, seed):
        self.rng = random.Random(seed)
        self.counter = itertools.count()
        now = int(time.time())
        self.jwts = [(f"m{i}", mint({"sub": f"m{i}", "iat": now, "exp": now + 7200},
                                    alg="ES256" if i % 2 else "RS256")) for i in range(20)]
        # Every unique valid JWT stays in the verified-token cache (10,000 per worker) until it is
        # evicted: a bounded fill, not a leak, but at 5 % of the mix it alone added ~3 MiB over
        # ten minutes. 1 % keeps the case without drowning the RSS slope.
        self.kinds = [(25, self.pooled_cookie), (10, self.unique_cookie), (15, self.invalid_cookie),
                      (10, self.guest), (8, self.protected_without_identity), (21, self.repeated_jwt),
                      (1, self.unique_jwt), (5, self.forged_jwt), (5, self.no_match)]
        self.weights = [w for w, _ in self.kinds]
        self.lock = threading.Lock()

    def next(self):
        with self.lock:
            kind = self.rng.choices([k for _, k in self.kinds], self.weights)[0]
            n = next(self.counter)
        return kind.__name__, kind(n)

    @staticmethod
    def cookie(token):
        return {"Cookie": f"theme=dark; ory_kratos_session={token}"}

    def valid(self, name, host="echo.example.com"):
        def judge(status, got):
            if status == 200:
                return (None if got == identity(name) else f"valid-{name} forwarded as {got!r}"), False
            return None, status != 503
        return host, "/notes", self.cookie("valid-" + name), judge

    def pooled_cookie(self, n):
        return self.valid(f"pool{n % 50}", "admin.example.com" if n % 3 == 0 else "echo.example.com")

    def unique_cookie(self, n):
        return self.valid(f"u{n}")

    def invalid_cookie(self, n):
        def judge(status, got):
            wrong = f"invalid cookie forwarded as {got!r}" if status == 200 and got != "guest" else None
            return wrong, status not in (401, 503)
        return "echo.example.com", "/notes", self.cookie(f"bad-{n}"), judge

    def guest(self, n):
        def judge(status, got):
            return (f"no cookie forwarded as {got!r}" if status == 200 and got != "guest" else None), status != 200
        return "echo.example.com", f"/page/{n % 7}", {}, judge

    def protected_without_identity(self, n):
        def judge(status, got):
            return (f"the protected host reached as {got!r}" if status == 200 else None), status != 401
        return "admin.example.com", "/panel", {}, judge

    def jwt(self, sub, token):
        def judge(status, got):
            if status == 200:
                return (None if got == sub else f"jwt {sub} forwarded as {got!r}"), False
            return None, True
        return "api.example.com", "/things", {"Authorization": "Bearer " + token}, judge

    def repeated_jwt(self, n):
        return self.jwt(*self.jwts[n % len(self.jwts)])

    def unique_jwt(self, n):
        now = int(time.time())
        sub = f"unique{n}"
        return self.jwt(sub, mint({"sub": sub, "jti": str(n), "iat": now, "exp": now + 600},
                                  alg="ES256" if n % 2 else "RS256"))

    def forged_jwt(self, n):
        now = int(time.time())
        token = mint({"sub": "admin", "jti": str(n), "exp": now + 600}, tamper=True)

        def judge(status, got):
            return (f"a forged JWT forwarded as {got!r}" if status == 200 else None), status != 401
        return "api.example.com", "/things", {"Authorization": "Bearer " + token}, judge

    def no_match(self, n):
        def judge(status, got):
            return (f"an unmatched host forwarded as {got!r}" if status == 200 else None), status != 404
        return "nothing.example.com", "/x", {}, judge


def stat_values(envoy, names):
    values = {}
    for line in envoy.stats("wasm").splitlines():
        name, _, value = line.partition(": ")
        if name in names and value.strip().isdigit():
            values[name] = int(value)
    return values


VM_STATS = ["wasm.envoy.wasm.runtime.v8.created", "wasm.portcullis.vm_reload",
            "wasm.portcullis.vm_reload_failure"]


def prefill(envoy, n):
    """`n` distinct valid sessions, 8 at a time, bounded to 120 s."""
    if not n:
        return
    load = Clients(envoy.port, lambda i: ("prefill", "echo.example.com", "/notes",
                                       {"Cookie": f"ory_kratos_session=valid-fill{i}"}, None),
                clients=8, seconds=120, max_per_client=(n + 7) // 8)
    with load:
        load.join()
    served = sum(1 for o in load.snapshot() if o.status == 200)
    print(f"prefill: {served} of {len(load.snapshot())} distinct sessions served")


def evictions(envoy):
    """The session cache's eviction counter (portcullis_cache_total{cache=session,result=eviction})."""
    with urllib.request.urlopen(f"http://127.0.0.1:{envoy.admin}/stats/prometheus", timeout=5) as r:
        for line in r.read().decode().splitlines():
            if line.startswith("portcullis_cache_total{") and 'cache="session"' in line and 'result="eviction"' in line:
                return int(float(line.rsplit(" ", 1)[1]))
    return 0


def control(port, **body):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    conn.request("POST", "/__control", body=json.dumps(body), headers={"Content-Type": "application/json"})
    conn.getresponse().read()
    conn.close()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--duration", type=float, default=600)
    p.add_argument("--baseline", type=float, default=60, help="seconds in: the RSS every later figure is compared with")
    p.add_argument("--max-requests", type=int, default=1_000_000)
    p.add_argument("--clients", type=int, default=4)
    p.add_argument("--fault-every", type=float, default=3)
    p.add_argument("--max-growth", type=float, default=2.0, help="percent of RSS growth allowed after --baseline")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--json", help="write the figures here too")
    p.add_argument("--tiny-caches", action="store_true", help="session cache of 20 entries; evictions must move")
    p.add_argument("--prefill", type=int, default=0, help="distinct valid sessions sent before the load")
    args = p.parse_args()

    procs = []
    try:
        up, up_port = envoy_harness.start_script("echo_upstream.py")
        kratos, kratos_port = envoy_harness.start_script("kratos.py")
        jwks, jwks_port = envoy_harness.start_script("jwks.py")
        procs += [up, kratos, jwks]
        control(kratos_port, hang_ms=1500, flap_ms=400)
        config = CONFIG.replace("max_entries: 300", "max_entries: 20") if args.tiny_caches else CONFIG
        with envoy_harness.Envoy(config, concurrency=2, upstream_port=up_port, kratos_port=kratos_port,
                                 jwks_port=jwks_port) as envoy:
            prefill(envoy, args.prefill)
            return run(args, envoy, kratos_port)
    finally:
        for proc in procs:
            proc.kill()


def run(args, envoy, kratos_port):
    load = Load(args.seed)
    tally = Tally()
    stop = threading.Event()
    start = time.monotonic()
    deadline = start + args.duration

    def client():
        box = [None]
        while not stop.is_set() and time.monotonic() < deadline:
            with tally.lock:
                if tally.requests >= args.max_requests:
                    return
            kind, (host, path, headers, judge) = load.next()
            try:
                status, body = send(box, envoy.port, path, host, headers)
                wrong, unexpected = judge(status, seen_id(status, body))
                tally.add(kind, status, wrong, unexpected)
            except (OSError, http.client.HTTPException, ValueError, KeyError):
                with tally.lock:
                    tally.errors += 1

    def faults():
        for i in itertools.count():
            if stop.wait(args.fault_every):
                return
            mode = FAULTS[(i // 2) % len(FAULTS)] if i % 2 == 0 else "normal"
            control(kratos_port, mode=mode)

    threads = [threading.Thread(target=client, daemon=True) for _ in range(args.clients)]
    fault_thread = threading.Thread(target=faults, daemon=True)
    for t in threads + [fault_thread]:
        t.start()

    samples = []  # (seconds, rss KiB, requests)
    vm_at_baseline = None
    evictions_at_baseline = None
    while any(t.is_alive() for t in threads):
        time.sleep(1)
        elapsed = time.monotonic() - start
        if not samples or elapsed - samples[-1][0] >= 5:
            samples.append((round(elapsed), envoy.rss_kib(), tally.requests))
            if vm_at_baseline is None and elapsed >= args.baseline:
                vm_at_baseline = stat_values(envoy, VM_STATS)
                evictions_at_baseline = evictions(envoy)
        if envoy.proc.poll() is not None:
            break
    stop.set()
    fault_thread.join(timeout=5)
    control(kratos_port, mode="normal")
    elapsed = time.monotonic() - start
    envoy_alive = envoy.proc.poll() is None
    final_rss = envoy.rss_kib() if envoy_alive else 0
    vm_end = stat_values(envoy, VM_STATS) if envoy_alive else {}
    vm_at_baseline = vm_at_baseline or vm_end
    evictions_end = evictions(envoy) if envoy_alive else 0
    evicted = evictions_end - (evictions_at_baseline if evictions_at_baseline is not None else evictions_end)
    log_failures = VM_FAILURE.findall(envoy.log())
    baseline = next((s for s in samples if s[0] >= args.baseline), samples[-1] if samples else (0, 0, 0))
    growth = 100.0 * (final_rss - baseline[1]) / baseline[1] if baseline[1] else float("inf")
    vm_crashes = (len(log_failures) + vm_end.get("wasm.portcullis.vm_reload", 0)
                  + vm_end.get("wasm.portcullis.vm_reload_failure", 0)
                  + vm_end.get("wasm.envoy.wasm.runtime.v8.created", 0)
                  - vm_at_baseline.get("wasm.envoy.wasm.runtime.v8.created", 0)
                  + (0 if envoy_alive else 1))

    figures = {
        "duration_s": round(elapsed), "requests": tally.requests, "rps": round(tally.requests / elapsed),
        "client_errors": tally.errors, "statuses": dict(sorted(tally.statuses.items())),
        "rss_kib_at_baseline": baseline[1], "baseline_s": baseline[0], "rss_kib_at_end": final_rss,
        "rss_growth_percent": round(growth, 2), "vm_crashes": vm_crashes,
        "wrongly_allowed": len(tally.wrongly_allowed), "wrongly_allowed_examples": tally.wrongly_allowed[:5],
        "unexpected_statuses": tally.unexpected, "rss_samples": samples,
        "session_evictions_after_baseline": evicted, "session_evictions_total": evictions_end,
    }
    print("| figure | value | target |\n|---|---:|---|")
    print(f"| duration | {figures['duration_s']} s | |")
    print(f"| requests | {tally.requests} ({figures['rps']}/s, {args.clients} clients) | |")
    print(f"| statuses | {', '.join(f'{k}: {v}' for k, v in figures['statuses'].items())} | |")
    print(f"| Envoy RSS at {baseline[0]} s | {baseline[1] / 1024:.1f} MiB | |")
    print(f"| Envoy RSS at {figures['duration_s']} s | {final_rss / 1024:.1f} MiB | |")
    print(f"| RSS growth | {growth:+.2f} % | ≤ {args.max_growth} % |")
    print(f"| VM crashes | {vm_crashes} | 0 |")
    print(f"| session cache evictions after the baseline (total) | {evicted} ({evictions_end}) | "
          f"{'> 0' if args.tiny_caches else ''} |")
    print(f"| wrongly allowed | {len(tally.wrongly_allowed)} | 0 |")
    print(f"| unexpected statuses (not a security failure) | {tally.unexpected or 0} | |")
    print(f"| client errors (reset/timeout seen by the client) | {tally.errors} | |")
    for example in tally.wrongly_allowed[:5]:
        print("wrongly allowed:", example)
    for failure in log_failures[:5]:
        print("VM failure in the Envoy log:", failure)
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=1))
    ok = (not tally.wrongly_allowed and vm_crashes == 0 and growth <= args.max_growth
          and tally.requests > 0 and (evicted > 0 or not args.tiny_caches))
    print("soak: 1 passed, 0 failed" if ok else "soak: 0 passed, 1 failed")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
