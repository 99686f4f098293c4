"""The runnable bootstraps in envoy/, started as shipped (only their ${...} placeholders filled) in
real Envoy: minimal (anonymous), Kratos (Play 2), JWT (keys fetched over TLS), two workers, and what
Envoy does with a configuration the filter refuses, statically and through ECDS."""

import datetime
import http.server
import json
import re
import ssl
import subprocess
import threading
import time
import urllib.request
from pathlib import Path

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from conftest import ROOT, request, require_envoy, upstream_saw
import envoy_harness
from mint import azure_mi, mint

ENVOY = ROOT / "envoy"
BROKEN = "access_rules: [ {"
TENANT_KEYS = "/11111111-2222-3333-4444-555555555555/discovery/v2.0/keys"


identity = envoy_harness.identity


def start(name, upstream, **kw):
    require_envoy()
    return envoy_harness.Envoy(None, bootstrap=ENVOY / name, upstream_port=upstream, **kw)


def inline_config(bootstrap_text):
    """The filter configuration a bootstrap (or ECDS resource) carries, parsed."""
    doc = yaml.safe_load(envoy_harness.fill(bootstrap_text, PlaceholderValues()))
    found = []

    def walk(node):
        if isinstance(node, dict):
            if node.get("@type") == "type.googleapis.com/google.protobuf.StringValue":
                found.append(yaml.safe_load(node["value"]))
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)
    walk(doc)
    [config] = found
    return config


class PlaceholderValues(dict):
    """Any placeholder, as a port-shaped number (enough to parse a bootstrap)."""

    def __contains__(self, key):
        return True

    def __getitem__(self, key):
        return 1


def prometheus(envoy):
    with urllib.request.urlopen(f"http://127.0.0.1:{envoy.admin}/stats/prometheus", timeout=5) as r:
        return r.read().decode()


# --- the files ---------------------------------------------------------------------------------

@pytest.mark.parametrize("bootstrap, play", [
    ("kratos.yaml", "play2.yaml"), ("minimal.yaml", "play1.yaml"), ("ecds-portcullis.yaml", "play1.yaml")])
def test_a_bootstrap_carries_its_play_unchanged(bootstrap, play):
    shipped = inline_config((ENVOY / bootstrap).read_text())
    assert shipped == yaml.safe_load((ROOT / "filter-config" / play).read_text())


def test_every_placeholder_is_documented_in_the_file_that_uses_it():
    for path in ENVOY.glob("*.yaml"):
        text = path.read_text()
        used = set(re.findall(r"\$\{([A-Z0-9_]+)\}", "\n".join(
            line for line in text.splitlines() if not line.lstrip().startswith("#"))))
        header = "\n".join(line for line in text.splitlines() if line.startswith("#"))
        assert used, path
        assert all(name in header for name in used), (path, used)


# --- minimal, Kratos, JWT -------------------------------------------------------------------------

def test_minimal_forwards_guests_and_answers_unknown_hosts_itself(upstream):
    with start("minimal.yaml", upstream) as e:
        seen = upstream_saw(request(e.port, "/anything", headers=[("x-user-id", "admin")]))
        assert seen["headers"]["x-user-id"] == ["guest"]
        r = request(e.port, "/anything", host="nothing.example.com")
        assert r.status == 404 and r.json()["error"]["code"] == 404


def test_kratos_checks_sessions_against_kratos(upstream, kratos, jwks):
    kratos.reset()
    with start("kratos.yaml", upstream, kratos_port=kratos.port, jwks_port=jwks.port) as e:
        cookie = [("Cookie", "ory_kratos_session=valid-alice")]
        assert upstream_saw(request(e.port, "/notes", headers=cookie))["headers"]["x-user-id"] == [identity("alice")]
        assert [c["path"] for c in kratos.calls()] == ["/sessions/whoami"]
        assert request(e.port, "/", headers=[("Cookie", "ory_kratos_session=expired")]).status == 401
        assert upstream_saw(request(e.port, "/"))["headers"]["x-user-id"] == ["guest"]
        # The file's stats tags turn portcullis' tagged names into labels (published each 1 s tick).
        labelled = re.compile(r'^portcullis_requests_total\{(?=.*rule="echo-kratos")(?=.*decision="allow")'
                              r'(?=.*status="upstream").*\} 2$', re.M)
        deadline = time.time() + 5
        while not labelled.search(prometheus(e)):
            assert time.time() < deadline, prometheus(e)
            time.sleep(0.1)


class TlsJwks:
    """An IdP's JWKS endpoint over TLS, with its own CA, recording the SNI and paths it served."""

    def __init__(self, directory, name="login.microsoftonline.com"):
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.timezone.utc)
        ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "portcullis test CA")])
        ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(key.public_key())
              .serial_number(1).not_valid_before(now - datetime.timedelta(hours=1))
              .not_valid_after(now + datetime.timedelta(hours=1))
              .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
              .sign(key, hashes.SHA256()))
        leaf_key = ec.generate_private_key(ec.SECP256R1())
        leaf = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
                .issuer_name(ca_name).public_key(leaf_key.public_key()).serial_number(2)
                .not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(now + datetime.timedelta(hours=1))
                .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
                .sign(key, hashes.SHA256()))
        self.ca_file = Path(directory) / "ca.pem"
        self.ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
        chain = Path(directory) / "leaf.pem"
        chain.write_bytes(leaf.public_bytes(serialization.Encoding.PEM) + leaf_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(chain)
        self.sni, self.paths = [], []
        context.sni_callback = lambda sock, server_name, ctx: self.sni.append(server_name)
        keys = (ROOT / "tests/keys/jwks.json").read_bytes()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):
                outer.paths.append(self.path)
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(keys)))
                self.end_headers()
                self.wfile.write(keys)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def tls_jwks(tmp_path):
    server = TlsJwks(tmp_path)
    yield server
    server.close()


def jwt_values(server, ca_file):
    return {"JWKS_HOST": "127.0.0.1", "JWKS_PORT": server.port, "CA_BUNDLE": str(ca_file)}


def send_until_keys(port, headers, seconds=10):
    """The first keys arrive asynchronously; until then a jwt rule answers 503."""
    deadline = time.time() + seconds
    while True:
        r = request(port, "/machines/1", host="api.example.com", headers=headers)
        if r.status != 503 or time.time() > deadline:
            return r
        time.sleep(0.1)


def test_jwt_verifies_tokens_with_keys_fetched_over_tls(upstream, tls_jwks):
    with start("jwt.yaml", upstream, values=jwt_values(tls_jwks, tls_jwks.ca_file)) as e:
        token = mint(azure_mi(sub="machine-7"))
        seen = upstream_saw(send_until_keys(e.port, [("Authorization", "Bearer " + token)]))
        assert seen["headers"]["x-user-id"] == ["machine-7"]
        assert seen["headers"]["x-azure-app-id"] == ["app-machine-"]
        assert tls_jwks.sni and set(tls_jwks.sni) == {"login.microsoftonline.com"}
        assert set(tls_jwks.paths) == {TENANT_KEYS}
        forged = mint(azure_mi(sub="machine-7"), tamper=True)
        assert request(e.port, "/machines/1", host="api.example.com",
                       headers=[("Authorization", "Bearer " + forged)]).status == 401
        assert request(e.port, "/machines/1", host="api.example.com").status == 401


def test_jwt_refuses_a_jwks_host_whose_certificate_it_cannot_verify(upstream, tls_jwks, tmp_path):
    (tmp_path / "other").mkdir()
    stranger = TlsJwks(tmp_path / "other")
    try:
        # The cluster trusts another CA: no key set is ever served, and jwt rules answer 503.
        with start("jwt.yaml", upstream, values=jwt_values(tls_jwks, stranger.ca_file)) as e:
            r = send_until_keys(e.port, [("Authorization", "Bearer " + mint(azure_mi()))], seconds=3)
            assert r.status == 503
            assert tls_jwks.paths == []
    finally:
        stranger.close()


# --- two workers -----------------------------------------------------------------------------------

def test_two_workers_share_one_session_cache(upstream, kratos, jwks):
    kratos.reset()
    with start("kratos.yaml", upstream, kratos_port=kratos.port, jwks_port=jwks.port, concurrency=2) as e:
        cookie = [("Cookie", "ory_kratos_session=valid-bob")]
        for _ in range(40):  # each request on its own connection: the kernel spreads them
            seen = upstream_saw(request(e.port, "/", headers=cookie))
            assert seen["headers"]["x-user-id"] == [identity("bob")]
        workers = [e.stat(f"listener.127.0.0.1_{e.port}.worker_{n}.downstream_cx_total") for n in (0, 1)]
        assert sum(workers) == 40 and min(workers) > 0, workers
        assert len(kratos.calls()) == 1, "the second worker found the session in shared data"


# --- a configuration the filter refuses ------------------------------------------------------------

@pytest.mark.parametrize("policy", ["FAIL_CLOSED", "FAIL_RELOAD", "FAIL_OPEN"])
def test_a_static_bootstrap_with_a_refused_configuration_does_not_start(upstream, tmp_path, policy):
    require_envoy()
    text = envoy_harness.fill((ENVOY / "minimal.yaml").read_text(), {
        "LISTEN_PORT": envoy_harness.free_port(), "ADMIN_PORT": envoy_harness.free_port(),
        "UPSTREAM_PORT": upstream, "WASM": str(envoy_harness.WASM)})
    doc = yaml.safe_load(text)
    plugin = envoy_harness.connection_manager(doc)["http_filters"][0]["typed_config"]["config"]
    plugin["configuration"]["value"] = BROKEN
    plugin["failure_policy"] = policy
    config = tmp_path / "envoy.json"
    config.write_text(json.dumps(doc))
    run = subprocess.run([envoy_harness.envoy_binary(), "-c", str(config), "--use-dynamic-base-id",
                          "--disable-hot-restart", "-l", "info"], capture_output=True, text=True, timeout=60)
    assert run.returncode != 0
    assert "portcullis: configuration refused" in run.stderr
    assert "Unable to create Wasm plugin portcullis" in run.stderr


def wait_attempts(envoy, n, seconds=10):
    prefix = "extension_config_discovery.http_filter.portcullis."
    deadline = time.time() + seconds
    while envoy.stat(prefix + "update_attempt") < n:
        assert time.time() < deadline, envoy.log()
        time.sleep(0.05)
    return {k: envoy.stat(prefix + k) for k in ("update_success", "update_rejected")}


def test_ecds_refused_configurations_never_let_a_request_through(upstream, tmp_path):
    play1 = (ROOT / "filter-config/play1.yaml").read_text()
    ecds = envoy_harness.EcdsFile(tmp_path)
    ecds.write(BROKEN)
    with start("ecds.yaml", upstream, values={"ECDS_DIR": str(tmp_path), "ECDS_FILE": "portcullis.json"}) as e:
        # No configuration was ever accepted: Envoy answers 500 itself; nothing is forwarded.
        assert wait_attempts(e, 1) == {"update_success": 0, "update_rejected": 1}
        r = request(e.port, "/anything")
        assert r.status == 500 and b'"path"' not in r.body
        assert "portcullis: configuration refused" in e.log()

        ecds.write(play1)
        assert wait_attempts(e, 2) == {"update_success": 1, "update_rejected": 1}
        assert upstream_saw(request(e.port, "/anything"))["headers"]["x-user-id"] == ["guest"]

        # A refused update leaves the last accepted configuration in force.
        ecds.write(play1.replace("subject: guest", "subject: [unclosed"))
        assert wait_attempts(e, 3) == {"update_success": 1, "update_rejected": 2}
        assert upstream_saw(request(e.port, "/anything"))["headers"]["x-user-id"] == ["guest"]

        # And an accepted one replaces it, so the file really is being read.
        ecds.write(play1.replace("subject: guest", "subject: visitor"))
        assert wait_attempts(e, 4) == {"update_success": 2, "update_rejected": 2}
        assert upstream_saw(request(e.port, "/anything"))["headers"]["x-user-id"] == ["visitor"]
