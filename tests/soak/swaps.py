#!/usr/bin/env python3
"""Configuration swaps under load: Envoy with 2 workers and portcullis delivered through ECDS
(envoy/ecds.yaml, a watched file), a new filter configuration every --every seconds while four
clients send mixed traffic through a slow Kratos. Bounded in time and requests; prints a table and
exits non-zero when a request was wrongly allowed, hung or answered by a stale configuration, when
Envoy took the refused configuration, or when its RSS grew more than --max-growth percent from the
first swap to the end (the first replacement is a one-off step, reported apart).

Generation g of the configuration (config(g)):
  web      echo.example.com: a Kratos session (cookie_session), always;
  api      api.example.com: a session in even generations, anyone (subject guest) in odd ones;
  only-g   g<g>.example.com: anyone; added with generation g, removed with g+1;
  cache    the session cache cycles through off / tiny (20 entries, 2 s) / large (1000, 30 s);
  every forwarded request carries x-config: g<g>, set by the generation that decided it.
One generation in the middle is refused by the filter (an authorizer that does not exist); Envoy
must reject it and keep the last accepted one.

A forwarded request is WRONGLY ALLOWED when the generation named in its x-config would not have
forwarded it, or would have forwarded it as someone else: an invalid or missing session on web; no
session on api in an even generation; a session on api forwarded under its identity in an odd one
or as guest in an even one; g<j>.example.com forwarded by any generation but j; no x-config at all
(the filter did not decide it); or the refused generation. A request is STALE when it was sent
more than --grace seconds after generation g+1 was accepted and still answered by g or older. A
request HANGS when no answer came within --timeout seconds (Kratos answers in --kratos-ms).

Usage: .venv/bin/python tests/soak/swaps.py --duration 60 [--every 1] [--json F]
(make soak runs it for 60 s; tests/envoy/test_swaps.py for 12 s in make test.)
"""

import argparse
import json
import random
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests/support"))
import envoy_harness  # noqa: E402
from load import Load  # noqa: E402

CACHES = ["{ enabled: false }", "{ enabled: true, ttl: 2s, max_entries: 20 }",
          "{ enabled: true, ttl: 30s, max_entries: 1000 }"]
POOL = 30


def config(g, refused=False):
    api = "cookie_session" if g % 2 == 0 else "anonymous"
    only_authorizer = "nope" if refused else "allow"
    return f"""
access_rules:
  rules:
    - id: web
      match: {{ url: "http://echo.example.com/<.*>", methods: [GET] }}
      authenticators: [{{ handler: cookie_session }}]
      authorizer: {{ handler: allow }}
      mutators: [{{ handler: header }}]
    - id: api
      match: {{ url: "http://api.example.com/<.*>", methods: [GET] }}
      authenticators: [{{ handler: {api} }}]
      authorizer: {{ handler: allow }}
      mutators: [{{ handler: header }}]
    - id: only-g{g}
      match: {{ url: "http://g{g}.example.com/<.*>", methods: [GET] }}
      authenticators: [{{ handler: anonymous }}]
      authorizer: {{ handler: {only_authorizer} }}
      mutators: [{{ handler: header }}]
authenticators:
  anonymous: {{ enabled: true, config: {{ subject: guest }} }}
  cookie_session:
    enabled: true
    config:
      check_session_url: http://kratos-public.auth/sessions/whoami
      only: [ory_kratos_session]
      preserve_path: true
      subject_from: identity.id
      cache: {CACHES[g % len(CACHES)]}
authorizers: {{ allow: {{ enabled: true }} }}
mutators:
  header: {{ enabled: true, config: {{ headers: {{ x-user-id: "{{{{ print .Subject }}}}", x-config: "g{g}" }} }} }}
errors: {{ fallback: [json] }}
clusters:
  "http://kratos-public.auth": {{ cluster: kratos, timeout: 2s }}
"""


KRATOS_CLUSTER = """    - name: kratos
      connect_timeout: 1s
      type: STATIC
      load_assignment:
        cluster_name: kratos
        endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: 127.0.0.1, port_value: ${KRATOS_PORT} } } } }] }]
"""


identity = envoy_harness.identity


ECDS = "extension_config_discovery.http_filter.portcullis."


class Swapper:
    """Writes generation after generation; `accepted` is [(generation, time accepted)]."""

    def __init__(self, envoy, ecds, every, swaps, refused_at):
        self.envoy, self.ecds, self.every = envoy, ecds, every
        self.swaps, self.refused_at = swaps, refused_at
        self.accepted = [(0, time.monotonic())]
        self.refused = None
        self.rejected_updates = 0
        self.rss = []
        self.lock = threading.Lock()
        self.done = threading.Event()
        self.error = None

    def current(self):
        with self.lock:
            return self.accepted[-1][0]

    def wait_attempts(self, n, seconds=10):
        deadline = time.monotonic() + seconds
        while self.envoy.stat(ECDS + "update_attempt") < n:
            if time.monotonic() > deadline:
                raise RuntimeError(f"ECDS update {n} was never attempted")
            time.sleep(0.02)

    def run(self):
        try:
            g = 0
            for i in range(1, self.swaps + 1):
                time.sleep(self.every)
                g += 1
                refused = i == self.refused_at
                self.ecds.write(config(g, refused=refused))
                self.wait_attempts(self.ecds.writes)
                if refused:
                    self.refused = g
                    self.rejected_updates = self.envoy.stat(ECDS + "update_rejected")
                else:
                    with self.lock:
                        self.accepted.append((g, time.monotonic()))
                self.rss.append(self.envoy.rss_kib())
        except Exception as e:  # reported, and fails the run
            self.error = repr(e)
        finally:
            self.done.set()


class Mix:
    """The traffic. Each request's tag is its judge: judge(outcome, generation) -> verdict
    ("ok", "wrong: why", or "denied")."""

    def __init__(self, swapper, seed):
        self.swapper = swapper
        self.rng = random.Random(seed)
        self.lock = threading.Lock()

    def __call__(self, n):
        with self.lock:
            pick = self.rng.random()
            offset = self.rng.choice((-1, 0, 1))
        if pick < 0.25:
            name = f"p{n % POOL}"
            return ("web-session", "echo.example.com", "/notes",
                    {"Cookie": "theme=dark; ory_kratos_session=valid-" + name}, ("web", identity(name)))
        if pick < 0.40:
            name = f"u{n}"  # never cached: always a Kratos callout
            return ("web-session-new", "echo.example.com", "/notes",
                    {"Cookie": "ory_kratos_session=valid-" + name}, ("web", identity(name)))
        if pick < 0.50:
            return "web-invalid", "echo.example.com", "/notes", {"Cookie": f"ory_kratos_session=bad-{n}"}, ("deny",)
        if pick < 0.55:
            return "web-none", "echo.example.com", "/notes", {}, ("deny",)
        if pick < 0.70:
            return "api-none", "api.example.com", "/things", {}, ("api", None)
        if pick < 0.80:
            name = f"p{n % POOL}"
            return ("api-session", "api.example.com", "/things",
                    {"Cookie": "ory_kratos_session=valid-" + name}, ("api", identity(name)))
        j = max(0, self.swapper.current() + offset)
        return "only-g", f"g{j}.example.com", "/x", {}, ("only", j)


def answered_by(o):
    value = o.seen("x-config")
    return int(value[1:]) if value and value.startswith("g") and value[1:].isdigit() else None


def judge(o, refused):
    """None when the request was rightly forwarded or not forwarded; else why it was wrong."""
    if o.forwarded is None:
        return None
    k = answered_by(o)
    user = o.seen("x-user-id")
    if k is None:
        return "forwarded without x-config: the filter did not decide it"
    if k == refused:
        return "answered by the refused configuration"
    rule = o.tag
    if rule[0] == "deny":
        return f"{o.kind} forwarded by g{k}"
    if rule[0] == "web":
        return None if user == rule[1] else f"web session forwarded as someone else by g{k}"
    if rule[0] == "api":
        if k % 2 == 0:
            return None if rule[1] is not None and user == rule[1] else f"{o.kind} forwarded as {user!r} by g{k}"
        return None if user == "guest" else f"{o.kind} forwarded as {user!r} by anonymous g{k}"
    if rule[0] == "only":
        return None if k == rule[1] and user == "guest" else f"g{rule[1]}.example.com forwarded by g{k}"
    return f"unknown kind {o.kind}"


def parse_args(argv=None):
    p = argparse.ArgumentParser()
    p.add_argument("--duration", type=float, default=60, help="seconds of swaps")
    p.add_argument("--every", type=float, default=1.0, help="seconds between swaps")
    p.add_argument("--clients", type=int, default=6)
    p.add_argument("--kratos-ms", type=int, default=300, help="Kratos' latency: requests park behind it")
    p.add_argument("--timeout", type=float, default=10, help="a request unanswered this long hangs")
    p.add_argument("--grace", type=float, default=0.5, help="seconds a replaced configuration may still answer")
    p.add_argument("--max-growth", type=float, default=5.0,
                   help="percent of RSS growth allowed from the first swap to the end")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--json", help="write the figures here too")
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    figures = run(args)
    print_table(figures, args)
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=1))
    return 0 if figures["ok"] else 1


def run(args):
    procs = []
    swaps = max(2, int(args.duration / args.every))
    with tempfile.TemporaryDirectory(prefix="portcullis-swaps-") as tmp:
        try:
            up, up_port = envoy_harness.start_script("echo_upstream.py")
            kratos, kratos_port = envoy_harness.start_script("kratos.py", "--latency-ms", str(args.kratos_ms))
            procs += [up, kratos]
            bootstrap = Path(tmp) / "envoy.yaml"
            bootstrap.write_text((ROOT / "envoy/ecds.yaml").read_text().rstrip("\n") + "\n" + KRATOS_CLUSTER)
            ecds_dir = Path(tmp) / "ecds"
            ecds_dir.mkdir()
            ecds = envoy_harness.EcdsFile(ecds_dir)
            ecds.write(config(0))
            with envoy_harness.Envoy(None, bootstrap=bootstrap, concurrency=2, upstream_port=up_port,
                                     kratos_port=kratos_port,
                                     values={"ECDS_DIR": ecds_dir, "ECDS_FILE": ecds.name}) as envoy:
                return swap_under_load(args, envoy, ecds, swaps)
        finally:
            for proc in procs:
                proc.kill()


def swap_under_load(args, envoy, ecds, swaps):
    swapper = Swapper(envoy, ecds, args.every, swaps, refused_at=swaps // 2)
    swapper.wait_attempts(1)
    assert envoy.stat(ECDS + "update_success") == 1, envoy.log()
    mix = Mix(swapper, args.seed)
    seconds = 2 + swaps * args.every + 2
    with Load(envoy.port, mix, clients=args.clients, seconds=seconds + 10, timeout=args.timeout) as load:
        time.sleep(2)  # warm: sessions cached, allocator pools, connections
        rss_before = envoy.rss_kib()
        started = time.monotonic()
        thread = threading.Thread(target=swapper.run, daemon=True)
        thread.start()
        swapper.done.wait(timeout=swaps * (args.every + 10) + 10)
        time.sleep(2)  # the last generation serves too
        load.stop()
    outcomes = load.snapshot()
    rss_after = envoy.rss_kib() if envoy.proc.poll() is None else 0

    wrong = [(o.kind, why) for o in outcomes if (why := judge(o, swapper.refused))]
    hung = [o for o in outcomes if o.status == 0 and (o.details == "timeout" or o.finished - o.started >= args.timeout)]
    resets = [o for o in outcomes if o.status == 0 and o not in hung]
    stale = []
    accepted = swapper.accepted
    for o in outcomes:
        k = answered_by(o)
        if k is None:
            continue
        newer = [t for g, t in accepted if g > k]
        if newer and o.started > newer[0] + args.grace:
            stale.append((o.kind, k))
    five = {}
    for o in outcomes:
        if o.status >= 500:
            key = f"{o.status} {o.details[:80] or '(empty body: Envoy itself)'}"
            five[key] = five.get(key, 0) + 1
    swap_times = [t for _, t in accepted[1:]]
    crossed = [o for o in outcomes if any(o.started < t < o.finished for t in swap_times)]
    statuses = {}
    for o in outcomes:
        statuses[o.status] = statuses.get(o.status, 0) + 1
    # The first replacement costs Envoy a one-off step (about 6 MiB here); what must stay bounded
    # is the growth from there on.
    rss_first = swapper.rss[0] if swapper.rss else rss_before
    growth = 100.0 * (rss_after - rss_first) / rss_first if rss_first else float("inf")
    answered_by_gen = {}
    for o in outcomes:
        k = answered_by(o)
        if k is not None:
            answered_by_gen[k] = answered_by_gen.get(k, 0) + 1
    figures = {
        "swap_seconds": round(time.monotonic() - started, 1), "swaps": swaps,
        "accepted": len(accepted) - 1, "refused_generation": swapper.refused,
        "update_success": envoy.stat(ECDS + "update_success"),
        "update_rejected": envoy.stat(ECDS + "update_rejected"),
        "generations_seen_forwarding": len(answered_by_gen),
        "requests": len(outcomes), "statuses": dict(sorted(statuses.items())),
        "wrongly_allowed": len(wrong), "wrongly_allowed_examples": wrong[:5],
        "hung": len(hung), "resets": len(resets), "stale": len(stale), "stale_examples": stale[:5],
        "crossed_a_swap": len(crossed),
        "crossed_a_swap_answered": sum(1 for o in crossed if o.status),
        "five_xx": five, "rss_kib_before": rss_before, "rss_kib_after_first_swap": rss_first,
        "rss_kib_after": rss_after,
        "rss_kib_samples": swapper.rss, "rss_growth_percent": round(growth, 2),
        "envoy_alive": envoy.proc.poll() is None, "swapper_error": swapper.error,
    }
    figures["ok"] = (not wrong and not hung and not stale and not swapper.error and figures["envoy_alive"]
                     and figures["update_rejected"] == 1 and figures["update_success"] == len(accepted)
                     and len(outcomes) > 0 and growth <= args.max_growth)
    return figures


def print_table(f, args):
    print("| figure | value | target |\n|---|---:|---|")
    print(f"| swaps | {f['swaps']} in {f['swap_seconds']} s ({f['accepted']} accepted, g{f['refused_generation']} refused) | |")
    print(f"| ECDS update_success / update_rejected | {f['update_success']} / {f['update_rejected']} | {f['accepted'] + 1} / 1 |")
    print(f"| requests | {f['requests']} ({args.clients} clients, Kratos {args.kratos_ms} ms) | |")
    print(f"| statuses | {', '.join(f'{k}: {v}' for k, v in f['statuses'].items())} | |")
    print(f"| wrongly allowed | {f['wrongly_allowed']} | 0 |")
    print(f"| hung (no answer in {args.timeout:g} s) | {f['hung']} | 0 |")
    print(f"| answered by a replaced configuration > {args.grace} s after the swap | {f['stale']} | 0 |")
    print(f"| in flight across a swap / answered | {f['crossed_a_swap']} / {f['crossed_a_swap_answered']} | all |")
    print(f"| connection resets | {f['resets']} | |")
    print(f"| 5xx by cause | {f['five_xx'] or 0} | |")
    print(f"| Envoy RSS before the swaps / after the first / at the end | {f['rss_kib_before'] / 1024:.1f} / "
          f"{f['rss_kib_after_first_swap'] / 1024:.1f} / {f['rss_kib_after'] / 1024:.1f} MiB | |")
    print(f"| RSS growth after the first swap | {f['rss_growth_percent']:+.2f} % | ≤ {args.max_growth} % |")
    for example in f["wrongly_allowed_examples"]:
        print("wrongly allowed:", example)
    if f["swapper_error"]:
        print("swapper:", f["swapper_error"])
    print("swaps: 1 passed, 0 failed" if f["ok"] else "swaps: 0 passed, 1 failed")


if __name__ == "__main__":
    sys.exit(main())
