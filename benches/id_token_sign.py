#!/usr/bin/env python3
"""What an id_token signature costs in Envoy's V8: the same anonymous rule with the `header`
mutator (baseline) or `id_token` with an ES256, EdDSA or RS256 key, every request on a new path
so the token cache never hits (the path is a claim). Envoy (--concurrency 1) runs on CPU 0, this
client on CPU 1; the cost is Envoy's user+system CPU per request minus the baseline's, medians of
alternating rounds. Bounded: N requests per round, a few rounds.

  id_token_sign.py [--requests N] [--rounds N]
"""

import argparse
import base64
import http.client
import os
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests/support"))
import envoy_harness  # noqa: E402

ROOT = envoy_harness.ROOT
TICKS = os.sysconf("SC_CLK_TCK")
DIRECT = 'direct_response: { status: 200, body: { inline_string: "ok" } }'


def config(mutator):
    return f"""
access_rules:
  rules:
    - id: echo
      match: {{ url: "http://echo.example.com/<.*>", methods: [GET] }}
      authenticators: [{{ handler: anonymous }}]
      authorizer: {{ handler: allow }}
      mutators: [{{ handler: {mutator} }}]
authenticators: {{ anonymous: {{ enabled: true }} }}
authorizers: {{ allow: {{ enabled: true }} }}
mutators:
  header: {{ enabled: true, config: {{ headers: {{ x-path: "{{{{ .MatchContext.URL.Path }}}}" }} }} }}
"""


def signing(name):
    doc = (ROOT / f"tests/keys/signing-{name}.jwks.json").read_bytes()
    return config("id_token") + f"""  id_token:
    enabled: true
    config:
      jwks_url: base64://{base64.b64encode(doc).decode()}
      issuer_url: https://portcullis.example.com/
      claims: '{{"path": {{{{ toJson .MatchContext.URL.Path }}}}}}'
"""


def cpu(pid):
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def run(text, n, offset):
    with envoy_harness.Envoy(text, route=DIRECT, cpus="0") as e:
        conn = http.client.HTTPConnection("127.0.0.1", e.port, timeout=10)
        for i in range(50):  # warm up: V8 compiles, the first sign may allocate
            conn.request("GET", f"/warm/{offset}/{i}", headers={"Host": "echo.example.com"})
            conn.getresponse().read()
        before = cpu(e.pid())
        for i in range(n):
            conn.request("GET", f"/p/{offset}/{i}", headers={"Host": "echo.example.com"})
            r = conn.getresponse()
            r.read()
            assert r.status == 200, r.status
        return (cpu(e.pid()) - before) / n * 1e6


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--requests", type=int, default=2000)
    p.add_argument("--rounds", type=int, default=3)
    a = p.parse_args()
    os.sched_setaffinity(0, {1})
    cases = {"header (baseline)": config("header"), "id_token ES256": signing("es256"),
             "id_token EdDSA": signing("eddsa"), "id_token RS256": signing("rs256")}
    got = {k: [] for k in cases}
    for r in range(a.rounds):
        for name, text in cases.items():
            got[name].append(run(text, a.requests, r))
    base = statistics.median(got["header (baseline)"])
    print(f"| case | CPU-µs/request | signing µs (minus baseline) | ÷ baseline |")
    print("|---|---:|---:|---:|")
    for name, samples in got.items():
        m = statistics.median(samples)
        print(f"| {name} | {m:.0f} | {m - base:.0f} | {m / base:.2f} |")


if __name__ == "__main__":
    main()
