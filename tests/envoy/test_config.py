"""A configuration the filter refuses must fail closed in Envoy: nothing reaches the upstream."""

import urllib.request

import pytest

from conftest import require_envoy, request
import envoy_harness


@pytest.mark.parametrize("config", [
    "access_rules: [ {",
    "access_rules:\n  rules:\n    - { id: r, match: { url: 'http://a/<.*', methods: [GET] }, authenticators: [{handler: anonymous}], authorizer: {handler: allow}, mutators: [{handler: noop}] }\nauthenticators: {anonymous: {enabled: true}}\nauthorizers: {allow: {enabled: true}}\nmutators: {noop: {enabled: true}}\n",
])
def test_a_refused_configuration_fails_closed(upstream, config):
    require_envoy()
    try:
        envoy = envoy_harness.Envoy(config, upstream_port=upstream, expect_ready=False)
        envoy.__enter__()
    except RuntimeError as e:
        # Envoy refused the whole bootstrap: nothing can pass. The log must say why.
        assert "configuration refused" in str(e) or "Unable to create Wasm" in str(e), str(e)
        return
    try:
        r = request(envoy.port, "/anything", host="a")
        assert r.status >= 500, (r.status, r.body)
        assert b'"path"' not in r.body
        assert "configuration refused" in envoy.log()
    finally:
        envoy.__exit__(None, None, None)
