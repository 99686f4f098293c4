"""Validating a Kubernetes manifest against a CRD's openAPIV3Schema as the API server does, with
jsonschema.

A structural schema is OpenAPI v3 (Draft 4 keywords, plus `nullable`) with Kubernetes extensions
that plain JSON Schema does not know, handled here:
- unknown fields: the API server prunes them, and `kubectl apply` (strict field validation, its
  default) refuses them, so every object without x-kubernetes-preserve-unknown-fields or
  additionalProperties gets additionalProperties: false;
- apiVersion, kind and metadata are implied at the root (metadata.name: a DNS-1123 subdomain);
- x-kubernetes-int-or-string (with its anyOf), format int32/int64 ranges;
- x-kubernetes-list-type: map / set (unique keys / items);
- x-kubernetes-validations: CEL rules. Only the rules the reference CRDs use are known, each as a
  Python predicate; an unknown rule is an error, so a newer CRD cannot pass unchecked.
"""

import copy
import urllib.parse

import jsonschema
from jsonschema import ValidationError

DNS_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
URL_SCHEMES = ["", "http", "https", "oci", "file"]


def _is_url(text):
    parts = urllib.parse.urlsplit(text)
    return bool(parts.scheme) and (bool(parts.netloc) or bool(parts.path))


def _url_scheme_ok(text):
    if _is_url(text):
        return urllib.parse.urlsplit(text).scheme in URL_SCHEMES
    return _is_url("http://" + text)


GATEWAY_API = "gateway.networking.k8s.io"
EG_ROUTES = ["HTTPRoute", "GRPCRoute", "UDPRoute", "TCPRoute", "TLSRoute"]
EG_TARGETS = ["Gateway", "ListenerSet"] + EG_ROUTES[:2] + ["UDPRoute", "TCPRoute", "TLSRoute"]


def _cel_list(items):
    return "[" + ", ".join(f"'{i}'" for i in items) + "]"


# CEL rule text (as in the CRD) -> predicate on `self`.
CEL = {
    '!self.contains("*")': lambda s: "*" not in s,
    'self.all(key, !key.contains("*"))': lambda s: all("*" not in k for k in s),
    "self.all(key, key.size() != 0)": lambda s: all(len(k) != 0 for k in s),
    "self.size() == 0": lambda s: len(s) == 0,
    '(has(self.valueFrom) ? self.valueFrom : "") != "HOST" || !has(self.value)':
        lambda s: s.get("valueFrom", "") != "HOST" or "value" not in s,
    "(has(self.selector) ? 1 : 0) + (has(self.targetRef) ? 1 : 0) + (has(self.targetRefs) ? 1 : 0) <= 1":
        lambda s: sum(k in s for k in ("selector", "targetRef", "targetRefs")) <= 1,
    # Envoy Gateway's EnvoyExtensionPolicy (v1.9.0): targets, and the wasm code source.
    "(has(self.targetRef) && !has(self.targetRefs)) || (!has(self.targetRef) && has(self.targetRefs)) || "
    "(has(self.targetSelectors) && self.targetSelectors.size() > 0)":
        lambda s: ("targetRef" in s) != ("targetRefs" in s) or len(s.get("targetSelectors") or []) > 0,
    "has(self.targetRef) ? self.targetRef.group == 'gateway.networking.k8s.io' : true":
        lambda s: "targetRef" not in s or s["targetRef"].get("group") == GATEWAY_API,
    f"has(self.targetRef) ? self.targetRef.kind in {_cel_list(EG_TARGETS)} : true":
        lambda s: "targetRef" not in s or s["targetRef"].get("kind") in EG_TARGETS,
    "has(self.targetRefs) ? self.targetRefs.all(ref, ref.group == 'gateway.networking.k8s.io') : true":
        lambda s: all(r.get("group") == GATEWAY_API for r in s.get("targetRefs", [])),
    f"has(self.targetRefs) ? self.targetRefs.all(ref, ref.kind in {_cel_list(EG_TARGETS)}) : true":
        lambda s: all(r.get("kind") in EG_TARGETS for r in s.get("targetRefs", [])),
    f"!has(self.mergeType) || ((!has(self.targetRef) || self.targetRef.kind in {_cel_list(EG_ROUTES)}) && "
    f"(!has(self.targetRefs) || self.targetRefs.all(ref, ref.kind in {_cel_list(EG_ROUTES)})) && "
    f"(!has(self.targetSelectors) || self.targetSelectors.all(sel, sel.kind in {_cel_list(EG_ROUTES)})))":
        lambda s: "mergeType" not in s or all(
            r.get("kind") in EG_ROUTES
            for r in [s.get("targetRef", {"kind": "HTTPRoute"})] + s.get("targetRefs", []) + s.get("targetSelectors", [])),
    "self.type == 'HTTP' ? has(self.http) : !has(self.http)": lambda s: (s.get("type") == "HTTP") == ("http" in s),
    "self.type == 'Image' ? has(self.image) : !has(self.image)": lambda s: (s.get("type") == "Image") == ("image" in s),
    "self.kind == 'Secret'": lambda s: s.get("kind") == "Secret",
    'isURL(self) ? (url(self).getScheme() in ["", "http", "https", "oci", "file"]) : (isURL("http://" + self) &&\n'
    'url("http://" + self).getScheme() in ["", "http", "https", "oci", "file"])': _url_scheme_ok,
}


def _cel(validator, rules, instance, schema):
    for rule in rules:
        check = CEL.get(rule["rule"].strip())
        if check is None:
            raise KeyError(f"CEL rule not known to tests/deploy/k8s_schema.py: {rule['rule']!r}")
        if not check(instance):
            yield ValidationError(rule.get("message", rule["rule"]))


def _list_type(validator, kind, instance, schema):
    if not validator.is_type(instance, "array"):
        return
    if kind == "map":
        keys = [tuple(item.get(k) for k in schema.get("x-kubernetes-list-map-keys", [])) for item in instance]
        if len(keys) != len(set(keys)):
            yield ValidationError(f"duplicate entries for list-map keys {schema.get('x-kubernetes-list-map-keys')}")
    elif kind == "set":
        seen = [repr(item) for item in instance]
        if len(seen) != len(set(seen)):
            yield ValidationError("duplicate entries in a list-type set")


Validator = jsonschema.validators.extend(jsonschema.Draft4Validator, {
    "x-kubernetes-validations": _cel,
    "x-kubernetes-list-type": _list_type,
})

INT_RANGES = {"int32": (-2**31, 2**31 - 1), "int64": (-2**63, 2**63 - 1)}


def _structural(node):
    """The OpenAPI v3 + Kubernetes schema as a JSON Schema Validator understands (a copy)."""
    if isinstance(node, list):
        return [_structural(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: _structural(v) for k, v in node.items()}
    if out.pop("nullable", False) and "type" in out:
        out["type"] = [out["type"], "null"]
    if out.get("format") in INT_RANGES:
        out["minimum"], out["maximum"] = INT_RANGES[out["format"]]
    preserve = out.get("x-kubernetes-preserve-unknown-fields", False)
    if out.get("type") == "object" and not preserve and "additionalProperties" not in out:
        out["additionalProperties"] = False
    return out


def crd_validator(crd, version):
    """A validator for one version of a CustomResourceDefinition (the parsed CRD document)."""
    [ver] = [v for v in crd["spec"]["versions"] if v["name"] == version]
    schema = _structural(copy.deepcopy(ver["schema"]["openAPIV3Schema"]))
    group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
    props = schema.setdefault("properties", {})
    props["apiVersion"] = {"enum": [f"{group}/{version}"]}
    props["kind"] = {"enum": [kind]}
    props["metadata"] = {"type": "object", "required": ["name"], "properties": {
        "name": {"type": "string", "pattern": DNS_SUBDOMAIN, "maxLength": 253},
        "namespace": {"type": "string", "pattern": DNS_SUBDOMAIN, "maxLength": 63},
        "labels": {"type": "object", "additionalProperties": {"type": "string"}},
        "annotations": {"type": "object", "additionalProperties": {"type": "string"}},
    }, "additionalProperties": True}
    schema["required"] = sorted(set(schema.get("required", [])) | {"apiVersion", "kind", "metadata"})
    Validator.check_schema(schema)
    return Validator(schema)


def errors(validator, manifest):
    """Every violation, as 'path: message' strings (empty when the manifest is valid)."""
    return sorted(f"{'.'.join(str(p) for p in e.absolute_path) or '<root>'}: {e.message}"
                  for e in validator.iter_errors(manifest))


def errors_after(validator, manifest, change):
    """The violations of a copy of `manifest` whose spec `change` (a function) has altered."""
    broken = copy.deepcopy(manifest)
    change(broken["spec"])
    return errors(validator, broken)
