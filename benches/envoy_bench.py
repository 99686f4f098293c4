#!/usr/bin/env python3
"""Side-by-side Envoy benchmarks: the same listener and upstream (an Envoy direct_response), only
the HTTP filter chain changes.

The system under test is Envoy with --concurrency 1 pinned to CPU 0; wrk, the stand-ins and S8's
authorization service run on CPU 1. Scenarios run in alternating rounds and the median is kept:
read the ratios, since absolute numbers depend on a shared, noisy machine. For each scenario:

- throughput: wrk closed-loop, 16 connections; CPU-µs per request is the user+system time (from
  /proc) of every process involved on the server side (Envoy, plus S8's authorization service or
  S7's session store, both Envoys answering directly) divided by the requests served; "Envoy CPU %" shows whether the system
  under test was saturated (if not, the load side was the bottleneck);
- latency: p50/p99 at a fixed offered load below the knee (wrk paced by wrk.lua's delay()).

  envoy_bench.py [--quick] [--scenarios S0,S1,...] [--rounds N] [--seconds N] [--out DIR]
"""

import argparse
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests/support"))
import envoy_harness  # noqa: E402
import mint  # noqa: E402

ROOT = envoy_harness.ROOT
BENCHES = ROOT / "benches"
PORTCULLIS = envoy_harness.WASM
# The crypto backends portcullis reported (portcullis_crypto_backend) in the scenarios that ran it.
BACKENDS = set()
DIRECT = 'direct_response: { status: 200, body: { inline_string: "ok" } }'
TICKS = os.sysconf("SC_CLK_TCK")
FLOOR = BENCHES / "floor/target/wasm32-wasip1/release/floor.wasm"
CONNECTIONS = 16
# More unique values than the verified-token and session caches hold (10,000): cycling through
# them in order misses every time.
UNIQUE = 12_000
# Offered load for the latency columns, and connections pacing it (delay = connections / load).
LOAD_RPS, LOAD_CONNECTIONS = 5_000, 10
SLOW_LOAD_RPS = 500  # for the scenarios whose knee is below LOAD_RPS (signature verification)


def build_floor():
    subprocess.run(["cargo", "build", "--release", "--target", "wasm32-wasip1", "--quiet"],
                   cwd=BENCHES / "floor", check=True)


def rules_config(n, expr=".*"):
    """n rules on distinct hosts; the benchmark request matches the last one. `expr` is each
    rule's last group: `(?!admin).*` runs the lookaround matcher instead of regex-lite's."""
    rules = [{
        "id": f"svc{i}",
        "match": {"url": f"http<s?>://svc{i}.example.com/api/<{expr}>", "methods": ["GET"]},
        "authenticators": [{"handler": "anonymous"}],
        "authorizer": {"handler": "allow"},
        "mutators": [{"handler": "header"}],
    } for i in range(n)]
    return json.dumps({
        "access_rules": {"rules": rules},
        "authenticators": {"anonymous": {"enabled": True, "config": {"subject": "guest"}}},
        "authorizers": {"allow": {"enabled": True}},
        "mutators": {"header": {"enabled": True, "config": {"headers": {"x-user-id": "{{ print .Subject }}"}}}},
    })


def values_file(kind, workdir):
    """UNIQUE distinct tokens or session names, one per line."""
    path = Path(workdir, f"{kind}.txt")
    if not path.exists():
        now = int(time.time())
        if kind == "cookies":
            lines = (f"valid-bench{i}" for i in range(UNIQUE))
        elif kind == "RS256":
            lines = (mint.mint(mint.azure_mi(sub=f"m{i}", now=now)) for i in range(UNIQUE))
        else:
            lines = (mint.mint({"sub": f"m{i}", "scp": ["machines"], "exp": now + 3600}, alg=kind)
                     for i in range(UNIQUE))
        path.write_text("\n".join(lines) + "\n")
    return path


def jwt_authn_block(cache):
    keys = json.loads((ROOT / "tests/keys/jwks.json").read_text())
    keys["keys"] = [k for k in keys["keys"] if k.get("use") == "sig"]
    text = (BENCHES / "filters/jwt_authn.yaml").read_text().replace("@JWKS@", json.dumps(keys))
    return text.replace("@CACHE@", "jwt_cache_config: { jwt_cache_size: 1000 }" if cache else "").rstrip("\n")


def scenarios(workdir):
    play1 = (ROOT / "filter-config/play1.yaml").read_text()
    play2 = (ROOT / "filter-config/play2.yaml").read_text()
    play3 = (ROOT / "filter-config/play3.yaml").read_text()
    echo = dict(host="echo.example.com", headers=[])
    machines = dict(config=play3, host="api.example.com", path="/machines/bench")
    scoped = dict(config=play3, host="api.example.com", path="/scoped/bench")
    repeated = ["Authorization: Bearer " + mint.mint(mint.azure_mi(sub="repeat", lifetime=86400))]

    def unique(alg, base):
        claims = mint.azure_mi(sub="warm") if alg == "RS256" else {"sub": "warm", "scp": ["machines"]}
        return dict(base, desc=f"portcullis jwt {alg}, unique tokens (cache miss)", load=SLOW_LOAD_RPS,
                    headers=["Authorization: Bearer " + mint.mint(claims, alg=alg)],
                    values=lambda: (values_file(alg, workdir), "Authorization", "Bearer "))

    def cookies(latency_ms):
        return dict(echo, config=play2, desc=f"portcullis cookie_session, unique cookies (miss), Kratos at {latency_ms} ms",
                    kratos_latency_ms=latency_ms, load=SLOW_LOAD_RPS if latency_ms else LOAD_RPS,
                    headers=["Cookie: ory_kratos_session=valid-warm"],
                    values=lambda: (values_file("cookies", workdir), "Cookie", "ory_kratos_session="))

    return {
        "S0": dict(echo, desc="no auth filter", config=None),
        "F": dict(echo, desc="floor: a do-nothing wasm filter setting one header", config="", wasm=FLOOR),
        "S1": dict(echo, desc="portcullis anonymous + allow + header", config=play1),
        "S2": dict(machines, desc="portcullis jwt RS256, one token repeated (cache hit)", headers=repeated),
        "S3": unique("RS256", machines),
        "S3-ES256": unique("ES256", scoped),
        "S3-EdDSA": unique("EdDSA", scoped),
        "S4": dict(machines, desc="Envoy jwt_authn RS256, same token, no cache", config=None,
                   block=lambda: jwt_authn_block(False), headers=repeated),
        "S4-cache": dict(machines, desc="Envoy jwt_authn RS256, same token, jwt_cache_config", config=None,
                         block=lambda: jwt_authn_block(True), headers=repeated),
        "S6": dict(echo, desc="portcullis cookie_session, cache hit", config=play2,
                   headers=["Cookie: ory_kratos_session=valid-alice"]),
        "S7-0": cookies(0),
        "S7-2": cookies(2),
        "S8": dict(echo, desc="Envoy ext_authz (HTTP) to an always-allow Envoy", config=None,
                   block=lambda: (BENCHES / "filters/ext_authz.yaml").read_text().rstrip("\n"), authz=True),
        "S10-10": dict(desc="portcullis 10 rules, last matches", config=rules_config(10), host="svc9.example.com", headers=[]),
        "S10-100": dict(desc="portcullis 100 rules, last matches", config=rules_config(100), host="svc99.example.com", headers=[]),
        "S10-1000": dict(desc="portcullis 1000 rules, last matches", config=rules_config(1000), host="svc999.example.com", headers=[]),
        "S10-10-look": dict(desc="portcullis 10 lookahead rules `<(?!admin).*>`, last matches",
                            config=rules_config(10, "(?!admin).*"), host="svc9.example.com", headers=[]),
    }


def cpu_ticks(pid):
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def rss_kib(pid):
    m = re.search(r"VmRSS:\s+(\d+) kB", Path(f"/proc/{pid}/status").read_text())
    return int(m.group(1)) if m else 0


def parse_wrk(text):
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
    total = int(re.search(r"(\d+) requests in", text).group(1))
    lat = {}
    for pct, value, unit in re.findall(r"^\s+(50|99)(?:\.000)?%\s+([\d.]+)(us|ms|s)", text, re.M):
        lat[pct] = float(value) * {"us": 1, "ms": 1000, "s": 1e6}[unit]
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    return rps, total, lat, int(non2xx.group(1)) if non2xx else 0


def side_envoy(route, block=None):
    """An Envoy on CPU 1 answering every request itself: S8's always-allow authorization service,
    and S7's session store (a Python stand-in would measure Python, not the filter)."""
    return envoy_harness.Envoy("", filters=False, route=route, cpus="1", block=block)


def authz_envoy():
    # `route` is loaded as a YAML mapping of its own: both keys at column 0.
    return side_envoy("direct_response: { status: 200 }\n"
                      "response_headers_to_add: [{ header: { key: x-user-id, value: guest } }]")


def kratos_envoy(latency_ms):
    """Answers /sessions/whoami with one Kratos session body, after `latency_ms` (fault filter)."""
    body = json.dumps(json.dumps({"id": "s", "active": True, "expires_at": "2099-01-01T00:00:00Z",
                                  "identity": {"id": "bench-identity", "traits": {"email": "bench@example.com"}}}))
    route = f"direct_response: {{ status: 200, body: {{ inline_string: {body} }} }}"
    block = None
    if latency_ms:
        block = (BENCHES / "filters/fault_delay.yaml").read_text().replace("@DELAY@", f"{latency_ms / 1000}s").rstrip("\n")
    return side_envoy(route, block)


def wrk(base, url, seconds, env, script=True):
    args = base + (["-s", str(BENCHES / "wrk.lua")] if script else []) + [f"-d{seconds}s", url]
    return subprocess.run(args, capture_output=True, text=True, env=env).stdout


def run_one(sc, seconds, stand_ins):
    side = None
    if sc.get("authz"):
        side = authz_envoy().__enter__()
    elif "kratos_latency_ms" in sc:
        side = kratos_envoy(sc["kratos_latency_ms"]).__enter__()
    try:
        block = sc["block"]() if "block" in sc else None
        # `wasm` is passed, not set as envoy_harness.WASM: Envoy's default is bound when it is defined.
        with envoy_harness.Envoy(sc["config"] or "", filters=sc["config"] is not None, route=DIRECT,
                                 wasm=sc.get("wasm", PORTCULLIS),
                                 cpus="0", block=block, jwks_port=stand_ins["jwks_port"],
                                 kratos_port=side.port if side and not sc.get("authz") else stand_ins["kratos_port"],
                                 authz_port=side.port if side else None) as e:
            url = f"http://127.0.0.1:{e.port}{sc.get('path', '/api/bench')}"
            fixed = ["-H", f"Host: {sc['host']}"] + [x for h in sc["headers"] for x in ("-H", h)]
            base = ["taskset", "-c", "1", "wrk", "-t1", "--latency"]
            env = dict(os.environ)
            # Warm-up with the fixed headers: keys fetched, caches filled, never the unique values.
            wrk(base + [f"-c{CONNECTIONS}"] + fixed, url, 1, env, script=False)
            used_backend = re.search(r"backend=\.=(\w+);\.;portcullis_crypto_backend: 1\b",
                                     e.stats("portcullis_crypto_backend"))
            if used_backend:
                BACKENDS.add(used_backend.group(1))
            if "values" in sc:
                path, header, prefix = sc["values"]()
                env.update(PORTCULLIS_VALUES=str(path), PORTCULLIS_HEADER=header, PORTCULLIS_PREFIX=prefix)
                fixed = [a for a in fixed if not a.startswith(header + ":")]
                fixed = [a for i, a in enumerate(fixed) if not (a == "-H" and (i + 1 == len(fixed) or fixed[i + 1] == "-H"))]
            servers = [e.pid()] + ([side.pid()] if side else [])
            before = [cpu_ticks(p) for p in servers]
            started = time.time()
            out = wrk(base + [f"-c{CONNECTIONS}"] + fixed, url, seconds, env)
            wall = time.time() - started
            used = [cpu_ticks(p) - b for p, b in zip(servers, before)]
            rps, total, _, non2xx = parse_wrk(out)
            if non2xx or total == 0:
                raise RuntimeError(f"{non2xx} non-2xx responses in {sc['desc']}:\n{out}\n{e.log()[-3000:]}")
            load = sc.get("load", LOAD_RPS)
            env["PORTCULLIS_DELAY_MS"] = str(int(LOAD_CONNECTIONS * 1000 / load))
            paced = wrk(base + [f"-c{LOAD_CONNECTIONS}"] + fixed, url, max(2, seconds // 2), env)
            _, _, lat, non2xx = parse_wrk(paced)
            if non2xx:
                raise RuntimeError(f"{non2xx} non-2xx responses at fixed load in {sc['desc']}")
            return {"rps": rps, "p50_us": lat.get("50"), "p99_us": lat.get("99"), "load_rps": load,
                    "cpu_us_per_req": sum(used) / TICKS * 1e6 / total,
                    "envoy_cpu_pct": used[0] / TICKS / wall * 100,
                    "rss_kib": rss_kib(e.pid())}
    finally:
        if side:
            side.__exit__(None, None, None)


def rss_by_workers(config, stand_ins):
    """Envoy's resident memory with portcullis (Play 2) at 1 and 2 workers, after 200 requests, and
    at start (1 worker, 2 s after ready, no request yet) beside F's (the do-nothing wasm filter) and
    no filter's: portcullis at start minus F at start is what portcullis itself costs."""
    out = {}
    for workers in (1, 2):
        with envoy_harness.Envoy(config, route=DIRECT, concurrency=workers, kratos_port=stand_ins["kratos_port"],
                                 jwks_port=stand_ins["jwks_port"]) as e:
            if workers == 1:
                time.sleep(2)
                out["start"] = rss_kib(e.pid())
            subprocess.run(["wrk", "-t1", "-c4", "-d1s", "-H", "Host: echo.example.com",
                            f"http://127.0.0.1:{e.port}/"], capture_output=True)
            out[workers] = rss_kib(e.pid())
    if not FLOOR.exists():
        build_floor()
    with envoy_harness.Envoy("", route=DIRECT, wasm=FLOOR) as e:
        time.sleep(2)
        out["F start"] = rss_kib(e.pid())
    with envoy_harness.Envoy("", filters=False, route=DIRECT) as e:
        out["no filter"] = rss_kib(e.pid())
    return out


def machine():
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), "?")
    return f"{model}, {os.cpu_count()} CPUs, Linux {platform.release()}"


def ratio(a, b):
    return f"{a / b:.3f}" if a and b else "-"


def table(names, all_sc, med, rounds, seconds, rss):
    s0, s4, s4c, s8 = (med.get(k) for k in ("S0", "S4", "S4-cache", "S8"))
    lines = ["| scenario | what | rps | p50 µs | p99 µs | at rps | CPU-µs/req | Envoy CPU % | ÷ S0 | ÷ S4 | ÷ S4-cache | CPU ÷ S8 |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for n in names:
        m = med[n]
        lines.append(
            f"| {n} | {all_sc[n]['desc']} | {m['rps']:.0f} | {m['p50_us']:.0f} | {m['p99_us']:.0f} | {m['load_rps']:.0f} | "
            f"{m['cpu_us_per_req']:.1f} | {m['envoy_cpu_pct']:.0f} | {ratio(m['rps'], s0 and s0['rps'])} | "
            f"{ratio(m['rps'], s4 and s4['rps'])} | {ratio(m['rps'], s4c and s4c['rps'])} | "
            f"{ratio(m['cpu_us_per_req'], s8 and s8['cpu_us_per_req'])} |")
    hit = med.get("S2")
    notes = []
    for n in names:
        if n.startswith("S3") and hit:
            alg = n.split("-")[1] if "-" in n else "RS256"
            notes.append(f"- {alg} verify in Envoy V8: {med[n]['cpu_us_per_req'] - hit['cpu_us_per_req']:.0f} µs "
                         f"(CPU-µs/req of {n} minus S2)")
    if "S10-10" in med and "S10-1000" in med:
        notes.append(f"- 1,000 rules cost {ratio(med['S10-1000']['cpu_us_per_req'], med['S10-10']['cpu_us_per_req'])} "
                     f"× 10 rules (CPU-µs/req)")
    if "S10-10" in med and "S10-10-look" in med:
        notes.append(f"- 10 lookahead rules cost {ratio(med['S10-10-look']['cpu_us_per_req'], med['S10-10']['cpu_us_per_req'])} "
                     f"× 10 plain ones (CPU-µs/req)")
    if rss:
        notes.append(f"- Envoy RSS with portcullis (Play 2), after 200 requests: {rss[1]} KiB with 1 worker, "
                     f"{rss[2]} KiB with 2; without the filter {rss['no filter']} KiB")
        notes.append(f"- Envoy RSS at start, 1 worker: portcullis (Play 2) {rss['start']} KiB, F {rss['F start']} KiB; "
                     f"portcullis − F = {(rss['start'] - rss['F start']) / 1024:.1f} MiB")
    notes.append(f"- .wasm: {PORTCULLIS.stat().st_size} bytes; signatures checked by the "
                 f"{' and '.join(sorted(BACKENDS)) or 'unknown'} crypto backend (portcullis_crypto_backend)")
    notes.append(f"- Machine: {machine()}. Envoy --concurrency 1 on CPU 0; wrk -t1 -c{CONNECTIONS}, the stand-ins "
                 f"and S8's authorization Envoy on CPU 1. Median of {rounds} alternating rounds of {seconds} s; "
                 f"latency at the fixed load in 'at rps' ({LOAD_CONNECTIONS} paced connections).")
    return "\n".join(lines) + "\n\n" + "\n".join(notes) + "\n"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--scenarios", default="S0,F,S1,S2,S3,S3-ES256,S3-EdDSA,S4,S4-cache,S6,S7-0,S7-2,S8,"
                                           "S10-10,S10-100,S10-1000,S10-10-look")
    ap.add_argument("--rounds", type=int)
    ap.add_argument("--seconds", type=int)
    ap.add_argument("--out", default=str(BENCHES / "results"))
    a = ap.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is not installed: `make bench` installs it (apt-get install -y wrk)")
    rounds = a.rounds or (1 if a.quick else 3)
    seconds = a.seconds or (3 if a.quick else 8)
    workdir = tempfile.mkdtemp(prefix="portcullis-bench-")
    all_sc = scenarios(workdir)
    names = a.scenarios.split(",")
    if "F" in names:
        build_floor()
    kratos, kratos_port = envoy_harness.start_script("kratos.py", cpus="1")
    jwks, jwks_port = envoy_harness.start_script("jwks.py", cpus="1")
    stand_ins = {"kratos_port": kratos_port, "jwks_port": jwks_port}
    results = {n: [] for n in names}
    try:
        for r in range(rounds):
            for n in names:
                results[n].append(run_one(all_sc[n], seconds, stand_ins))
                print(f"round {r + 1} {n}: {results[n][-1]['rps']:.0f} rps", file=sys.stderr, flush=True)
        rss = rss_by_workers((ROOT / "filter-config/play2.yaml").read_text(), stand_ins)
    finally:
        kratos.kill()
        jwks.kill()
    med = {n: {k: statistics.median(x[k] for x in results[n] if x[k] is not None) for k in results[n][0]}
           for n in names}
    text = table(names, all_sc, med, rounds, seconds, rss)
    print(text)
    os.makedirs(a.out, exist_ok=True)
    Path(a.out, "envoy.md").write_text(text)
    Path(a.out, "envoy.json").write_text(json.dumps(
        {"machine": machine(), "median": med, "rounds": results, "rss_kib": rss,
         "wasm_bytes": PORTCULLIS.stat().st_size}, indent=1))


if __name__ == "__main__":
    main()
