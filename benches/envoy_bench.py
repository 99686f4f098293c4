#!/usr/bin/env python3
"""Side-by-side Envoy benchmarks: the same listener and upstream, only the filter chain changes.

Envoy runs with --concurrency 1 pinned to one CPU; wrk and the stand-ins run on the other. Each
scenario is measured in alternating rounds and the median kept; ratios are what to read, since
absolute numbers depend on a shared, noisy machine. CPU-µs per request is Envoy's user+system
time from /proc divided by the requests served.

  envoy_bench.py [--quick] [--scenarios S0,S1,...] [--out benches/results]
"""

import argparse
import json
import os
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
PORTCULLIS = envoy_harness.WASM
DIRECT = 'direct_response: { status: 200, body: { inline_string: "ok" } }'
TICKS = os.sysconf("SC_CLK_TCK")
FLOOR = ROOT / "benches/floor/target/wasm32-wasip1/release/floor.wasm"


def build_floor():
    subprocess.run(["cargo", "build", "--release", "--target", "wasm32-wasip1", "--quiet"],
                   cwd=ROOT / "benches/floor", check=True)


def rules_config(n):
    """n rules on distinct hosts; the benchmark request matches the last one."""
    rules = [{
        "id": f"svc{i}",
        "match": {"url": f"http<s?>://svc{i}.example.com/api/<.*>", "methods": ["GET"]},
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


# More unique tokens than the verified-token cache holds (10,000): cycling through them in order
# misses every time.
UNIQUE_TOKENS = 12_000


def token_file(alg, count, workdir):
    """A file of `count` distinct tokens (one per line) valid for an hour."""
    path = Path(workdir, f"{alg}-{count}.txt")
    if not path.exists():
        now = int(time.time())
        if alg == "RS256":
            lines = (mint.mint(mint.azure_mi(sub=f"m{i}", now=now)) for i in range(count))
        else:
            lines = (mint.mint({"sub": f"m{i}", "scp": ["machines"], "exp": now + 3600}, alg=alg)
                     for i in range(count))
        path.write_text("\n".join(lines) + "\n")
    return path


def scenarios(workdir):
    play1 = (ROOT / "filter-config/play1.yaml").read_text()
    play2 = (ROOT / "filter-config/play2.yaml").read_text()
    play3 = (ROOT / "filter-config/play3.yaml").read_text()
    machines = dict(config=play3, host="api.example.com", path="/machines/bench")
    scoped = dict(config=play3, host="api.example.com", path="/scoped/bench")

    def unique(alg, base):
        claims = mint.azure_mi(sub="warm") if alg == "RS256" else {"sub": "warm", "scp": ["machines"]}
        return dict(base, desc=f"jwt {alg}, unique tokens (cache miss)",
                    headers=["Authorization: Bearer " + mint.mint(claims, alg=alg)],
                    tokens=lambda: token_file(alg, UNIQUE_TOKENS, workdir))

    return {
        "S0": dict(desc="no auth filter", config=None, host="echo.example.com", headers=[]),
        "F": dict(desc="floor: a do-nothing wasm filter setting one header", config="", wasm=FLOOR,
                  host="echo.example.com", headers=[]),
        "S1": dict(desc="anonymous + allow + header", config=play1, host="echo.example.com", headers=[]),
        "S2": dict(machines, desc="jwt RS256, one token repeated (cache hit)",
                   headers=["Authorization: Bearer " + mint.mint(mint.azure_mi(sub="repeat"))]),
        "S3": unique("RS256", machines),
        "S3-ES256": unique("ES256", scoped),
        "S3-EdDSA": unique("EdDSA", scoped),
        "S6": dict(desc="cookie_session, cache hit", config=play2, host="echo.example.com",
                   headers=["Cookie: ory_kratos_session=valid-alice"]),
        "S10-10": dict(desc="10 rules, last matches", config=rules_config(10), host="svc9.example.com", headers=[]),
        "S10-100": dict(desc="100 rules, last matches", config=rules_config(100), host="svc99.example.com", headers=[]),
        "S10-1000": dict(desc="1000 rules, last matches", config=rules_config(1000), host="svc999.example.com", headers=[]),
    }


def cpu_ticks(pid):
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def parse_wrk(text):
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
    total = int(re.search(r"(\d+) requests in", text).group(1))
    lat = {}
    for pct, value, unit in re.findall(r"^\s+(50|99)(?:\.000)?%\s+([\d.]+)(us|ms|s)", text, re.M):
        lat[pct] = float(value) * {"us": 1, "ms": 1000, "s": 1e6}[unit]
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    return rps, total, lat, int(non2xx.group(1)) if non2xx else 0


def run_one(sc, seconds, connections, ports):
    envoy_harness.WASM = sc.get("wasm", PORTCULLIS)
    with envoy_harness.Envoy(sc["config"] or "", filters=sc["config"] is not None, route=DIRECT,
                             cpus="0", **ports) as e:
        url = f"http://127.0.0.1:{e.port}{sc.get('path', '/api/bench')}"
        base = ["taskset", "-c", "1", "wrk", "-t1", f"-c{connections}", "--latency",
                "-H", f"Host: {sc['host']}"]
        fixed = [x for h in sc["headers"] for x in ("-H", h)]
        # Warm-up: keys fetched, caches filled (with the fixed headers, never the unique tokens).
        subprocess.run(base + fixed + ["-d1s", url], capture_output=True)
        env = dict(os.environ)
        args = base + fixed
        if "tokens" in sc:
            env["PORTCULLIS_TOKENS"] = str(sc["tokens"]())
            args = base + ["-s", str(ROOT / "benches/tokens.lua")]
        before = cpu_ticks(e.pid())
        out = subprocess.run(args + [f"-d{seconds}s", url], capture_output=True, text=True, env=env).stdout
        used = cpu_ticks(e.pid()) - before
        rps, total, lat, non2xx = parse_wrk(out)
        if non2xx:
            raise RuntimeError(f"{non2xx} non-2xx responses in {sc['desc']}:\n{out}\n{e.log()[-3000:]}")
        return {"rps": rps, "p50_us": lat.get("50"), "p99_us": lat.get("99"),
                "cpu_us_per_req": used / TICKS * 1e6 / max(total, 1)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--scenarios", default="S0,F,S1,S2,S3,S3-ES256,S3-EdDSA,S6,S10-10,S10-100,S10-1000")
    ap.add_argument("--rounds", type=int)
    ap.add_argument("--seconds", type=int)
    ap.add_argument("--connections", type=int, default=16)
    ap.add_argument("--out", default=str(ROOT / "benches/results"))
    a = ap.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is not installed: apt-get install -y wrk")
    rounds = a.rounds or (2 if a.quick else 3)
    seconds = a.seconds or (4 if a.quick else 10)
    workdir = tempfile.mkdtemp(prefix="portcullis-bench-")
    all_sc = scenarios(workdir)
    names = a.scenarios.split(",")
    if "F" in names:
        build_floor()
    kratos, kratos_port = envoy_harness.start_script("kratos.py")
    jwks, jwks_port = envoy_harness.start_script("jwks.py")
    ports = {"kratos_port": kratos_port, "jwks_port": jwks_port}
    results = {n: [] for n in names}
    try:
        for r in range(rounds):
            for n in names:
                results[n].append(run_one(all_sc[n], seconds, a.connections, ports))
                print(f"round {r + 1} {n}: {results[n][-1]['rps']:.0f} rps", file=sys.stderr, flush=True)
    finally:
        kratos.kill()
        jwks.kill()
    med = {n: {k: statistics.median(x[k] for x in results[n] if x[k] is not None) for k in results[n][0]}
           for n in names}
    base, floor = med.get("S0"), med.get("F")
    lines = ["| scenario | what | rps | p50 µs | p99 µs | CPU-µs/req | rps ÷ S0 | rps ÷ F |",
             "|---|---|---:|---:|---:|---:|---:|---:|"]
    for n in names:
        m = med[n]
        r0 = f"{m['rps'] / base['rps']:.3f}" if base else "-"
        rf = f"{m['rps'] / floor['rps']:.3f}" if floor else "-"
        lines.append(f"| {n} | {all_sc[n]['desc']} | {m['rps']:.0f} | {m['p50_us']:.0f} | {m['p99_us']:.0f} | "
                     f"{m['cpu_us_per_req']:.1f} | {r0} | {rf} |")
    hit = med.get("S2")
    for n in names:
        if n.startswith("S3") and hit:
            alg = n.split("-")[1] if "-" in n else "RS256"
            lines.append(f"\n{alg} verify in Envoy V8: {med[n]['cpu_us_per_req'] - hit['cpu_us_per_req']:.0f} µs "
                         f"(CPU-µs/req of {n} minus S2)")
    if hit and med.get("S1"):
        lines.append(f"\nrepeated RS256 token (S2) ÷ anonymous rule (S1): {hit['rps'] / med['S1']['rps']:.3f} rps")
    wasm = PORTCULLIS.stat().st_size
    lines.append(f"\n.wasm: {wasm} bytes; Envoy --concurrency 1 on CPU 0, wrk -t1 -c{a.connections} on CPU 1; "
                 f"median of {rounds} rounds of {seconds} s")
    table = "\n".join(lines)
    print(table)
    os.makedirs(a.out, exist_ok=True)
    Path(a.out, "envoy.md").write_text(table + "\n")
    Path(a.out, "envoy.json").write_text(json.dumps({"median": med, "rounds": results, "wasm_bytes": wasm}, indent=1))


if __name__ == "__main__":
    main()
