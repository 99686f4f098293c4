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


def scenarios():
    play1 = (ROOT / "filter-config/play1.yaml").read_text()
    play2 = (ROOT / "filter-config/play2.yaml").read_text()
    return {
        "S0": dict(desc="no auth filter", config=None, host="echo.example.com", headers=[]),
        "F": dict(desc="floor: a do-nothing wasm filter setting one header", config="", wasm=FLOOR,
                  host="echo.example.com", headers=[]),
        "S1": dict(desc="anonymous + allow + header", config=play1, host="echo.example.com", headers=[]),
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


def run_one(sc, seconds, connections, kratos_port):
    envoy_harness.WASM = sc.get("wasm", PORTCULLIS)
    with envoy_harness.Envoy(sc["config"] or "", filters=sc["config"] is not None, route=DIRECT,
                             kratos_port=kratos_port, cpus="0") as e:
        url = f"http://127.0.0.1:{e.port}/api/bench"
        args = ["taskset", "-c", "1", "wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency",
                "-H", f"Host: {sc['host']}"]
        for h in sc["headers"]:
            args += ["-H", h]
        subprocess.run(args[:-2] + ["-d1s", url], capture_output=True)  # warm-up (and cache fill)
        before = cpu_ticks(e.pid())
        out = subprocess.run(args + [url], capture_output=True, text=True).stdout
        used = cpu_ticks(e.pid()) - before
        rps, total, lat, non2xx = parse_wrk(out)
        if non2xx:
            raise RuntimeError(f"{non2xx} non-2xx responses in {sc['desc']}:\n{out}\n{e.log()[-3000:]}")
        return {"rps": rps, "p50_us": lat.get("50"), "p99_us": lat.get("99"),
                "cpu_us_per_req": used / TICKS * 1e6 / max(total, 1)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--scenarios", default="S0,F,S1,S6,S10-10,S10-100,S10-1000")
    ap.add_argument("--rounds", type=int)
    ap.add_argument("--seconds", type=int)
    ap.add_argument("--connections", type=int, default=16)
    ap.add_argument("--out", default=str(ROOT / "benches/results"))
    a = ap.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is not installed: apt-get install -y wrk")
    rounds = a.rounds or (2 if a.quick else 3)
    seconds = a.seconds or (4 if a.quick else 10)
    all_sc = scenarios()
    names = a.scenarios.split(",")
    if "F" in names:
        build_floor()
    kratos, kratos_port = envoy_harness.start_script("kratos.py")
    results = {n: [] for n in names}
    try:
        for r in range(rounds):
            for n in names:
                results[n].append(run_one(all_sc[n], seconds, a.connections, kratos_port))
                print(f"round {r + 1} {n}: {results[n][-1]['rps']:.0f} rps", file=sys.stderr, flush=True)
    finally:
        kratos.kill()
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
