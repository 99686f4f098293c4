"""envoy/gateway/: the EnvoyExtensionPolicy validates against Envoy Gateway's CRD (v1.9.0; a broken
one does not), loads the image `make oci` builds with failOpen: false, and targets the Gateway
the routes attach to; every callout cluster is one Envoy Gateway creates for a route rule
(httproute/<namespace>/<route>/rule/<index>) whose backend is the service the origin names; and
the configuration loads and decides in real Envoy 1.40 with clusters of those names."""

import json
import re
import sys
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
import test_istio  # noqa: E402
from test_istio import get, reference, require_envoy, stand_ins  # noqa: E402,F401

GATEWAY = ROOT / "envoy/gateway"
EG_CLUSTER = re.compile(r"^httproute/([^/]+)/([^/]+)/rule/(\d+)$")


@pytest.fixture(scope="module")
def policy_schema():
    [crd] = reference("envoy-gateway-envoyextensionpolicy.crd.yaml")
    return k8s_schema.crd_validator(crd, "v1alpha1")


def manifests(kind):
    return [d for _, d in test_istio.manifests(kind, GATEWAY)]


def the_policy():
    [policy] = manifests("EnvoyExtensionPolicy")
    return policy


def the_config():
    [wasm] = the_policy()["spec"]["wasm"]
    return wasm["config"]


def named(kind, namespace, name):
    [found] = [d for d in manifests(kind)
               if d["metadata"]["name"] == name and d["metadata"].get("namespace") == namespace]
    return found


# --- the policy ----------------------------------------------------------------------------------

def test_the_policy_is_valid_and_loads_the_image_failing_closed(policy_schema):
    policy = the_policy()
    assert k8s_schema.errors(policy_schema, policy) == []
    [wasm] = policy["spec"]["wasm"]
    assert wasm["failOpen"] is False
    assert wasm["code"]["type"] == "Image" and wasm["code"]["image"]["url"].startswith("oci://")
    assert wasm["rootID"] == "portcullis"
    play2 = yaml.safe_load((ROOT / "filter-config/play2.yaml").read_text())
    assert {k: v for k, v in the_config().items() if k != "clusters"} == \
        {k: v for k, v in play2.items() if k != "clusters"}


BROKEN = {
    "failOpen as a string": (lambda s: s["wasm"][0].update(failOpen="false"), "is not of type 'boolean'"),
    "no code": (lambda s: s["wasm"][0].pop("code"), "'code' is a required property"),
    "a code type Envoy Gateway does not have": (lambda s: s["wasm"][0]["code"].update(type="OCI"), "is not one of"),
    "a misspelt field": (lambda s: s["wasm"][0].update(failopen=False), "Additional properties"),
    "a target of another group": (lambda s: s["targetRefs"][0].update(group="apps"), "targetRefs[*].group"),
    "a Service as target": (lambda s: s["targetRefs"][0].update(kind="Service"), "targetRefs[*].kind"),
    "no target": (lambda s: s.pop("targetRefs"), "either targetRef or targetRefs"),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_a_broken_policy_is_refused(policy_schema, case):
    change, message = BROKEN[case]
    found = k8s_schema.errors_after(policy_schema, the_policy(), change)
    assert any(message in e for e in found), found


def test_the_policy_targets_the_gateway_every_route_attaches_to():
    [target] = the_policy()["spec"]["targetRefs"]
    assert target["kind"] == "Gateway"
    gateway = named("Gateway", the_policy()["metadata"]["namespace"], target["name"])
    routes = manifests("HTTPRoute")
    assert routes
    for route in routes:
        assert route["metadata"]["namespace"] == gateway["metadata"]["namespace"]
        assert [p["name"] for p in route["spec"]["parentRefs"]] == [gateway["metadata"]["name"]]
    # The application's hosts are those of the rules.
    [echo] = [r for r in routes if r["metadata"]["name"] == "echo"]
    for rule in the_config()["access_rules"]["rules"]:
        host = re.search(r"://([a-z0-9.-]+)", rule["match"]["url"]).group(1)
        assert host in echo["spec"]["hostnames"], host


# --- cluster names -------------------------------------------------------------------------------

def test_callout_clusters_are_route_rule_clusters_for_the_services_the_origins_name():
    for origin, target in the_config()["clusters"].items():
        cluster = target["cluster"] if isinstance(target, dict) else target
        match = EG_CLUSTER.match(cluster)
        assert match, f"{cluster} is not httproute/<namespace>/<route>/rule/<index>"
        namespace, name, index = match.group(1), match.group(2), int(match.group(3))
        route = named("HTTPRoute", namespace, name)
        [backend] = route["spec"]["rules"][index]["backendRefs"]
        scheme, host = origin.split("://")
        if backend.get("kind", "Service") == "Service":
            # A Service: the origin's host is <service>.<namespace>, allowed by a ReferenceGrant.
            assert scheme == "http" and host == f"{backend['name']}.{backend['namespace']}"
            grant = named("ReferenceGrant", backend["namespace"], name)
            assert {"group": "", "kind": "Service", "name": backend["name"]} in grant["spec"]["to"]
            continue
        # An external host: a Backend; an https origin has the cluster originate TLS to it.
        assert (backend["group"], backend["kind"]) == ("gateway.envoyproxy.io", "Backend")
        spec = named("Backend", namespace, backend["name"])["spec"]
        [endpoint] = spec["endpoints"]
        assert endpoint["fqdn"]["hostname"] == host
        if scheme == "https":
            assert endpoint["fqdn"]["port"] == backend["port"] == 443
            assert spec["tls"]["sni"] == host


# --- the configuration in Envoy ------------------------------------------------------------------

def test_the_configuration_runs_in_envoy_with_envoy_gateways_cluster_names(stand_ins):
    require_envoy()
    config = the_config()
    clusters = {}
    for origin, target in config["clusters"].items():
        name = target["cluster"] if isinstance(target, dict) else target
        clusters[name] = stand_ins["kratos"] if "kratos" in origin else stand_ins["jwks"]
    # Envoy Gateway hands the configuration to the filter as JSON.
    with envoy_harness.Envoy(json.dumps(config), upstream_port=stand_ins["upstream"], clusters=clusters) as envoy:
        alice = str(uuid.uuid5(uuid.NAMESPACE_URL, "identity/alice"))
        status, body = get(envoy.port, "echo.example.com", [("Cookie", "ory_kratos_session=valid-alice")])
        assert status == 200 and json.loads(body)["headers"]["x-user-id"] == [alice], (status, body)
        status, body = get(envoy.port, "echo.example.com")
        assert status == 200 and json.loads(body)["headers"]["x-user-id"] == ["guest"], (status, body)
        assert get(envoy.port, "echo.example.com", [("Cookie", "ory_kratos_session=expired")])[0] == 401
        # The callout route's own host: no access rule, so portcullis answers 404.
        assert get(envoy.port, "portcullis-callouts.internal")[0] == 404
        token = mint(azure_mi(sub="machine-7"))
        status, body = get(envoy.port, "echo.example.com", [("Authorization", "Bearer " + token)])
        assert status == 200 and json.loads(body)["headers"]["x-user-id"] == ["machine-7"], (status, body)
        stats = envoy.stats("upstream_rq_200")
        for name in clusters:
            found = re.search(r"^cluster\." + re.escape(name) + r"\.upstream_rq_200: (\d+)$", stats, re.M)
            assert found and int(found.group(1)) >= 1, (name, stats)
