"""The scenario tables (tests/scenarios/*.yaml, format in its README) in real Envoy 1.40: the third
tier beside the native harness and the wasmtime host. One Envoy per table (concurrency 1), every
cluster the table's config names pointed at the scripted stand-in (tests/support/scripted.py),
the application at the echo upstream. For each case the stand-in is told the answers in order,
the request is sent over HTTP/1.1, and the case passes only if the filter made exactly the listed
callouts and the request ended as the table says.

What this tier cannot see or set, and how it copes:
- the clock is real: time claims (exp, nbf, iat) of minted JWTs and of scripted answers are
  shifted by (now - the case's time), minted at the start of a second;
- the stand-in hears HTTP/1 from Envoy: `:authority` is its Host, `:scheme` is not seen, and
  `timeout_ms` is Envoy's x-envoy-expected-rq-timeout-ms;
- Envoy adds x-request-id to every request: a JSON error body's `error.request` is dropped when
  the case sent none and expects none;
- a table case Envoy cannot express is in SKIP below, with its reason: the only place.

`expect.filter_state` is read from Envoy's access log, one JSON line per request with
`%FILTER_STATE(wasm.portcullis.<key>:PLAIN)%` for every key, as an operator would log it."""

import json
import os
import time
from collections import Counter

import pytest
import yaml

from conftest import ROOT, StandIn, request, require_envoy, serve
import envoy_harness
import mint

SCENARIOS = ROOT / "tests/scenarios"
DEFAULT_TIME = 1700000000
TIME_CLAIMS = ("exp", "nbf", "iat")

PEER = "sets the downstream address; Envoy's peer is always 127.0.0.1"
METHOD = "a method that is not uppercase: Envoy's HTTP/1 codec refuses it with its own 400 " \
         "(test_confusion.py sends it over HTTP/2)"
NO_AUTHORITY = "omits :authority, which HTTP/1.1 cannot (Envoy answers a request without Host itself)"
JOINED = "repeated headers: Envoy joins them into one value before the filter sees them " \
         "(test_confusion.py asserts the joined value never authenticates)"
RESET_IS_503 = "a failed call: Envoy delivers a reset as its own 503 answer, so the filter's text is " \
               "'answered 503' (the status is the same)"
CRLF_ANSWER = "a CR or LF in a dependency's answer header: HTTP/1 cannot carry it to Envoy " \
              "(it would be a line break on the wire)"

# (table, case) -> why this tier cannot run it. Every other case of every table runs.
SKIP = {
    ("play1-anonymous", "https and the bare host match too"): METHOD,
    ("play1-anonymous", "a request without :authority is a JSON 400"): NO_AUTHORITY,
    ("confusion-requests", "a mixed-case method matches as uppercase and the upstream is sent the uppercase form"): METHOD,
    ("confusion-requests", "a mixed-case method on the protected route still needs the session"): METHOD,
    ("confusion-requests", "two Authorization headers are a 400, whichever one the upstream would read"): JOINED,
    ("kratos-play2", "a failed callout is 503, never a pass-through"): RESET_IS_503,
    ("injection-headers", "remote_json's forwarded answer header with CRLF is a 500"): CRLF_ANSWER,
    ("injection-headers", "a session store's 429 with a CRLF rate-limit header becomes a plain 500"): CRLF_ANSWER,
    ("when-remote-ip", "a peer inside the range is redirected"): PEER,
    ("when-remote-ip", "an IPv6 peer inside the range is redirected"): PEER,
    ("when-remote-ip", "a peer outside gets JSON, whatever X-Forwarded-For claims"): PEER,
    ("when-remote-ip", "with respect_forwarded_for_header any X-Forwarded-For entry counts"): PEER,
    ("when-remote-ip", "with respect_forwarded_for_header and no entry inside, JSON"): PEER,
}


def load_tables():
    """Every table, sorted by file name, as (file stem, table)."""
    return [(p.stem, yaml.safe_load(p.read_text())) for p in sorted(SCENARIOS.glob("*.yaml"))]


def signs_or_verifies(table):
    """Whether the table's rules check or make signatures (`jwt`, `id_token`)."""
    text = config_text(table) or ""
    return "config_error" not in table and ("jwt" in text or "id_token" in text)


def with_rust_crypto(table):
    """The table again with `envoy.host_crypto: false`: every signature in Rust, as on a proxy
    without Envoy's `verify_signature` and `sign`."""
    config = parsed_config(table)
    config["envoy"] = {**(config.get("envoy") or {}), "host_crypto": False}
    derived = {k: v for k, v in table.items() if k != "config_file"}
    derived.update(name=f"{table['name']} [rust crypto]", base=table["name"], config=config, crypto="rust")
    return derived


def config_text(table):
    if table.get("config_file"):
        return (ROOT / table["config_file"]).read_text()
    return json.dumps(table.get("config"))


def parsed_config(table):
    """The table's config as data; {} when it is not a mapping (some config_error tables)."""
    try:
        config = yaml.safe_load(config_text(table))
    except yaml.YAMLError:
        return {}
    return config if isinstance(config, dict) else {}


TABLES = load_tables()
# The tables whose rules check or make signatures run a second time with the Rust backend.
TABLES += [(stem, with_rust_crypto(t)) for stem, t in list(TABLES) if signs_or_verifies(t)]
BY_NAME = {t["name"]: t for _, t in TABLES}
# What ran and what was skipped, per table, for the terminal summary (conftest.py).
COUNTS = {t["name"]: Counter() for _, t in TABLES}


def cluster_names(table):
    """The clusters the table's config names (`clusters:` values)."""
    names = []
    for target in (parsed_config(table).get("clusters") or {}).values():
        name = target["cluster"] if isinstance(target, dict) else target
        if name not in names:
            names.append(name)
    return names


BUILT_IN_STATE = ("subject", "rule", "decision", "authenticator")


def access_log(table):
    """A JSON access log of every filter state key the table's config can set."""
    keys = list(BUILT_IN_STATE) + list(parsed_config(table).get("filter_state") or {})
    fields = {key: f"%FILTER_STATE(wasm.portcullis.{key}:PLAIN)%" for key in keys}
    return [{"name": "envoy.access_loggers.file", "typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog",
        "path": "${ACCESS_LOG}", "log_format": {"json_format": fields}}}]


def wasm_options(table):
    """What the config's `envoy:` section says Envoy's wasm filter is set to."""
    envoy = parsed_config(table).get("envoy") or {}
    if envoy.get("allow_on_headers_stop_iteration"):
        return {"allow_on_headers_stop_iteration": True}
    return None


class Scripted(StandIn):
    """The scripted stand-in: one listener per cluster, answers in order, a record of calls."""

    def clusters(self, names):
        return json.loads(self._post("/__clusters", {"names": names}))

    def script(self, answers, background=None):
        self._post("/__script", {"answers": answers, "background": background or {}})


@pytest.fixture(scope="module")
def scripted():
    yield from serve("scripted.py", Scripted)


class Tier:
    """The Envoy of the table being run; started when a case of another table arrives."""

    def __init__(self, upstream, scripted):
        self.upstream = upstream
        self.scripted = scripted
        self.table = None
        self.envoy = None
        # Earlier cases on this Envoy made callouts: the filter may have kept their answers (a
        # session cache, a grant, a JWKS refetch it will not repeat yet).
        self.dirty = False
        self.sent = 0

    def for_table(self, table):
        if self.table is not table:
            self.stop()
            self.start(table)
        return self.envoy

    def start(self, table):
        require_envoy()
        ports = self.scripted.clusters(cluster_names(table))
        background = None
        if table.get("jwks_file"):
            # The root context fetches the JWKS at start; that fetch is no case's callout.
            keys = (ROOT / table["jwks_file"]).read_text()
            background = {name: {"status": 200, "body": keys} for name in ports}
        self.scripted.script([], background)
        self.envoy = envoy_harness.Envoy(config_text(table), upstream_port=self.upstream, clusters=ports,
                                         wasm_options=wasm_options(table),
                                         access_log=yaml.safe_dump(access_log(table))).__enter__()
        self.table = table
        self.dirty = False
        self.sent = 0
        COUNTS[table["name"]]["starts"] += 1
        backend = table.get("crypto", "host")
        assert f"backend=.={backend};.;portcullis_crypto_backend: 1" in self.envoy.stats("portcullis_crypto_backend"), \
            f"not the {backend} crypto backend"
        if background:
            deadline = time.time() + 10
            while self.scripted.calls()["background"] == 0:
                assert time.time() < deadline, "the JWKS was not fetched at start:\n" + self.envoy.log()
                time.sleep(0.05)

    def stop(self):
        if self.envoy is not None:
            self.envoy.__exit__(None, None, None)
        self.envoy = self.table = None


@pytest.fixture(scope="module")
def tier(upstream, scripted):
    t = Tier(upstream, scripted)
    yield t
    t.stop()


def shifted(value, shift):
    """`value` with its top-level time claims moved by `shift` seconds."""
    if not isinstance(value, dict):
        return value
    return {k: v + shift if k in TIME_CLAIMS and isinstance(v, int) else v for k, v in value.items()}


def has_time_claims(case):
    return any(isinstance(v, dict) and "jwt" in v and any(c in v["jwt"].get("claims", {}) for c in TIME_CLAIMS)
               for _, v in case["request"].get("headers", []))


def header_value(value, shift):
    """A table header value as the bytes Envoy is sent (README: value forms)."""
    if isinstance(value, str):
        return value
    if "hex" in value:
        return bytes.fromhex(value["hex"])
    if "repeat" in value:
        return value["repeat"] * value["times"]
    spec = value["jwt"]
    token = mint.mint(shifted(spec.get("claims", {}), shift), alg=spec["alg"], key=spec.get("key"),
                      kid=spec.get("kid"), tamper=spec.get("tamper", False))
    return value.get("prefix", "") + token


def answer(respond, shift):
    """A callout's scripted answer for the stand-in."""
    if respond.get("fail"):
        return {"fail": True}
    if "body" in respond:
        body = respond["body"]
    elif "body_json" in respond:
        body = json.dumps(shifted(respond["body_json"], shift), separators=(",", ":"), ensure_ascii=False)
    elif "body_file" in respond:
        body = (ROOT / respond["body_file"]).read_text()
    else:
        body = ""
    return {"status": respond.get("status", 200), "headers": respond.get("headers", []), "body": body}


def send(envoy, req, shift):
    """The case's request over HTTP/1.1: origin form for http, absolute form for https."""
    scheme, rest = req["url"].split("://", 1)
    authority, slash, path = rest.partition("/")
    path = slash + path or "/"
    target = path if scheme == "http" else f"{scheme}://{authority}{path}"
    headers = [(name, header_value(value, shift)) for name, value in req.get("headers", [])]
    body = req.get("body")
    return request(envoy.port, target, host=authority, method=req.get("method", "GET"), headers=headers,
                   body=body.encode() if body is not None else None)


def utf8(value):
    """A header value as Python's HTTP server read it (Latin-1), as the UTF-8 text it was."""
    return value.encode("latin-1").decode("utf-8", "replace")


def seen_value(call, name):
    """A header of a recorded callout, pseudo-headers from the HTTP/1 request the stand-in got."""
    if name == ":method":
        return call["method"]
    if name == ":path":
        return call["path"]
    if name == ":authority":
        name = "host"
    return next((utf8(v) for k, v in call["headers"] if k == name), None)


def check_callout(expect, call):
    if "cluster" in expect:
        assert call["cluster"] == expect["cluster"], call
    if "timeout_ms" in expect:
        assert seen_value(call, "x-envoy-expected-rq-timeout-ms") == str(expect["timeout_ms"]), call
    for name, value in expect.get("headers", {}).items():
        if name.lower() == ":scheme":
            continue  # Envoy speaks plain HTTP/1 to the stand-in
        assert seen_value(call, name.lower()) == value, (name, call)
    for name in expect.get("absent", []):
        assert seen_value(call, name.lower()) is None, (name, call)
    if "body" in expect:
        assert call["body"] == expect["body"], call
    if "body_json" in expect:
        assert json.loads(call["body"]) == expect["body_json"], call


def forwarded(response):
    """What the echo upstream received, or None when the request ended in Envoy."""
    if response.status != 200:
        return None
    try:
        seen = response.json()
    except ValueError:
        return None
    return seen if isinstance(seen, dict) and {"method", "path", "headers"} <= seen.keys() else None


def forwarded_values(seen, name):
    if name == ":path":
        return [seen["path"]]
    if name == ":method":
        return [seen["method"]]
    if name == ":authority":
        name = "host"
    return [utf8(v) for v in seen["headers"].get(name, [])]


def check_forward(expect, response):
    seen = forwarded(response)
    assert seen is not None, f"expected a forward, got {response.status}: {response.body[:500]!r}"
    for name, value in expect.get("headers", {}).items():
        assert forwarded_values(seen, name.lower()) == [value], (name, seen)
    for name in expect.get("absent", []):
        assert forwarded_values(seen, name.lower()) == [], (name, seen)
    if "path" in expect:
        assert seen["path"] == expect["path"], seen


def check_reply(expect, response, sent_request_id):
    assert forwarded(response) is None, f"expected a reply, the upstream got it: {response.body[:500]!r}"
    assert response.status == expect["status"], (response.status, response.body[:500])
    for name, value in expect.get("headers", {}).items():
        assert response.header(name) == value, (name, response.headers)
    if "body" in expect:
        assert response.body == expect["body"].encode(), response.body
    if "body_json" in expect:
        got = response.json()
        error = got.get("error") if isinstance(got, dict) else None
        wanted = expect["body_json"].get("error", {})
        if isinstance(error, dict) and "request" not in wanted and not sent_request_id:
            error.pop("request", None)  # Envoy's x-request-id
        assert got == expect["body_json"]


class Stale(Exception):
    """The filter answered from what an earlier case left; each case starts from a warm proxy
    and nothing else (README), so it runs again on a fresh Envoy."""


def run_case(tier, scripted, table, case):
    envoy = tier.for_table(table)
    if has_time_claims(case) and time.time() % 1 > 0.5:
        time.sleep(1 - time.time() % 1)  # mint and send within one second
    shift = int(time.time()) - case.get("time", DEFAULT_TIME)
    callouts = case.get("callouts", [])
    scripted.script([answer(c["respond"], shift) for c in callouts])
    # Each request is one access log line, written when it ends: its index is how many came before.
    logged = tier.sent
    tier.sent += 1
    response = send(envoy, case["request"], shift)
    calls = scripted.calls()["calls"]
    if len(calls) < len(callouts) and tier.dirty:
        raise Stale()
    tier.dirty |= bool(calls)
    assert len(calls) == len(callouts), f"{len(calls)} callouts, expected {len(callouts)}: {calls}"
    for spec, call in zip(callouts, calls):
        check_callout(spec.get("expect", {}), call)
    expect = case["expect"]
    if expect.get("forward") is not None:
        check_forward(expect["forward"], response)
    else:
        sent_id = any(name.lower() == "x-request-id" for name, _ in case["request"].get("headers", []))
        check_reply(expect["reply"], response, sent_id)
    if expect.get("filter_state"):
        state = json.loads(envoy.access_line(logged))
        for key, value in expect["filter_state"].items():
            assert state.get(key) == value, (key, state)


CASES = [(t["name"], c["name"]) for _, t in TABLES for c in t.get("cases", [])]


@pytest.mark.parametrize("table_name,case_name", CASES, ids=[f"{t}: {c}" for t, c in CASES])
def test_case(tier, scripted, table_name, case_name):
    table = BY_NAME[table_name]
    case = next(c for c in table["cases"] if c["name"] == case_name)
    reason = SKIP.get((table.get("base", table_name), case_name))
    if reason:
        COUNTS[table_name]["skipped"] += 1
        pytest.skip(reason)
    try:
        run_case(tier, scripted, table, case)
    except Stale:
        tier.stop()
        run_case(tier, scripted, table, case)
    COUNTS[table_name]["ran"] += 1


REFUSED = [t["name"] for _, t in TABLES if "config_error" in t]


@pytest.mark.parametrize("table_name", REFUSED)
def test_refused_config(tier, upstream, table_name):
    """Envoy must not serve a configuration the filter refuses, and its log must say why."""
    tier.stop()
    require_envoy()
    table = BY_NAME[table_name]
    envoy = envoy_harness.Envoy(config_text(table), upstream_port=upstream, expect_ready=False)
    try:
        envoy.__enter__()
    except RuntimeError as e:
        assert table["config_error"] in str(e), str(e)[-3000:]
    else:
        try:
            r = request(envoy.port, "/", host="a")
            assert r.status >= 500 and forwarded(r) is None, (r.status, r.body)
            assert table["config_error"] in envoy.log(), envoy.log()[-3000:]
        finally:
            envoy.__exit__(None, None, None)
    COUNTS[table_name]["ran"] += 1
    COUNTS[table_name]["starts"] += 1


def test_every_table_is_loaded_and_every_skip_names_a_case():
    files = sorted(p for p in SCENARIOS.rglob("*.yaml"))
    referenced = {ROOT / t["config_file"] for _, t in TABLES if t.get("config_file")}
    loaded = {SCENARIOS / f"{stem}.yaml" for stem, _ in TABLES}
    missing = [str(p.relative_to(ROOT)) for p in files if p not in loaded and p not in referenced]
    assert not missing, f"scenario files this tier does not load: {missing}"
    for _, table in TABLES:
        assert table.get("cases") or "config_error" in table, f"{table['name']}: neither cases nor config_error"
    stale = [key for key in SKIP if key not in set(CASES)]
    assert not stale, f"SKIP names cases no table has: {stale}"


def summary(write):
    """Per table and in total: how many cases ran in Envoy and how many were skipped."""
    ran = sum(c["ran"] for c in COUNTS.values())
    skipped = sum(c["skipped"] for c in COUNTS.values())
    if not ran and not skipped:
        return
    write("scenario tables in Envoy: cases run, cases skipped, Envoy starts")
    for name, count in COUNTS.items():
        write(f"  {name:36} {count['ran']:4} {count['skipped']:4} {count['starts']:4}")
    starts = sum(c["starts"] for c in COUNTS.values())
    write(f"  {'total':36} {ran:4} {skipped:4} {starts:4}")


def unreached():
    """Tables none of whose cases ran or were skipped (the run left them out)."""
    return [name for name, count in COUNTS.items() if not count["ran"] and not count["skipped"]]


def ci():
    return os.environ.get("CI") == "true"
