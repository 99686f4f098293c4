"""Observability through real Envoy: stats for every decision in /stats and /stats/prometheus,
the request's trace context on the Kratos call, and one JSON log line per decision."""

import json
import re
import time
import urllib.request

import pytest

from conftest import request, start_envoy, upstream_saw


@pytest.fixture(scope="module")
def envoy(upstream, kratos, jwks):
    from conftest import ROOT
    config = (ROOT / "filter-config/play2.yaml").read_text().replace(
        "errors:\n", "log:\n  level: debug\nerrors:\n", 1)
    with start_envoy(config, upstream, kratos, jwks, wasm_log_level="debug") as e:
        yield e


@pytest.fixture(autouse=True)
def fresh(kratos):
    kratos.reset()


def stats(envoy, prometheus=False):
    path = "/stats/prometheus" if prometheus else "/stats?filter=portcullis"
    with urllib.request.urlopen(f"http://127.0.0.1:{envoy.admin}{path}", timeout=5) as r:
        return r.read().decode()


def prom_value(text, name, **labels):
    for line in text.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return None


def test_decisions_reach_envoy_stats_with_tags(envoy):
    for _ in range(3):
        assert request(envoy.port, "/").status == 200
    assert request(envoy.port, "/", headers=[("Cookie", "ory_kratos_session=expired")]).status == 401
    assert request(envoy.port, "/", host="nothing.example.com").status == 404
    time.sleep(1.5)  # published on the root context's tick
    text = stats(envoy, prometheus=True)
    assert prom_value(text, "portcullis_requests_total", rule="echo-kratos", decision="allow", status="upstream") >= 3, text
    assert prom_value(text, "portcullis_requests_total", rule="echo-kratos", decision="deny", status="401") >= 1
    assert prom_value(text, "portcullis_requests_total", rule="none", decision="deny", status="404") >= 1
    assert prom_value(text, "portcullis_authenticator_total", handler="cookie_session", outcome="rejected") >= 1
    assert prom_value(text, "portcullis_authenticator_total", handler="anonymous", outcome="responsible") >= 3
    assert prom_value(text, "portcullis_callouts_total", cluster="kratos", result="ok") >= 1
    assert prom_value(text, "portcullis_config_total", result="loaded") >= 1
    assert prom_value(text, "portcullis_jwks_ready") == 1
    assert "portcullis_callout_duration_ms_bucket" in text
    assert prom_value(text, "portcullis_jwks_fetches_total", result="started") >= 1
    log = envoy.log()
    assert "not ready: rules with jwt wait for the first JWKS fetch" in log
    assert "ready: every JWKS has been fetched" in log


def test_cache_hits_and_misses_are_counted(envoy):
    for _ in range(3):
        request(envoy.port, "/", headers=[("Cookie", "ory_kratos_session=valid-stats")])
    time.sleep(1.5)
    text = stats(envoy, prometheus=True)
    assert prom_value(text, "portcullis_cache_total", cache="session", result="miss") >= 1
    assert prom_value(text, "portcullis_cache_total", cache="session", result="hit") >= 2


def test_trace_context_reaches_kratos(envoy, kratos):
    trace = {"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
             "x-b3-traceid": "80f198ee56343ba864fe8b2a57d3eff7", "x-b3-spanid": "e457b5a2e4d86bd1",
             "x-b3-sampled": "1", "uber-trace-id": "4bf92f3577b34da6:00f067aa0ba902b7:0:1",
             "x-request-id": "0f8fad5b-d9cb-469f-a165-70867728950e"}
    r = request(envoy.port, "/", headers=[("Cookie", "ory_kratos_session=valid-traced")] + list(trace.items()))
    assert upstream_saw(r)["headers"]["x-user-id"] != []
    seen = kratos.calls()[0]["headers"]
    for name, value in trace.items():
        assert seen.get(name) == value, (name, seen)


def test_one_json_log_line_per_decision(envoy):
    marker = "/logged-" + str(time.time())
    request(envoy.port, marker, headers=[("Cookie", "ory_kratos_session=expired")])
    time.sleep(0.5)
    lines = [l for l in envoy.log().splitlines() if '"msg":"decision"' in l]
    assert lines, envoy.log()[-2000:]
    decision = json.loads(re.search(r"(\{.*\})\s*$", lines[-1]).group(1))
    assert decision["rule"] == "echo-kratos"
    assert decision["decision"] == "deny" and decision["status"] == 401
    assert decision["reason_id"] == "authentication_handler_no_match"
    assert decision["callouts"] == 1
    assert "duration_ms" in decision
    assert "subject" not in decision and "expired" not in lines[-1], "no credentials without leak_sensitive_values"
