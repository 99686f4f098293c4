"""The caller's identity for the rest of Envoy (README: "The caller's identity for the rest of
Envoy"), in real Envoy 1.40: the README's access log format and RBAC filter, copied from the
README itself, after portcullis with Kratos sessions. The access log shows the subject and rule of
allowed requests and the rule and decision of denied ones; RBAC's CEL condition lets one subject
through and refuses another, which it can only do if the subject was declared a string."""

import json
import re

import pytest
import yaml

from conftest import ROOT, request, start_envoy, upstream_saw


def config():
    """Play 2 with readable subjects (a Kratos identity's first name), an admin host every
    authenticated caller is refused on, and a templated filter state key."""
    play2 = yaml.safe_load((ROOT / "filter-config/play2.yaml").read_text())
    [echo] = [r for r in play2["access_rules"]["rules"] if r["id"] == "echo-kratos"]
    cookie = echo["authenticators"][0]
    cookie["config"]["subject_from"] = "identity.traits.name.first"
    admin = {"id": "admin", "match": {"url": "http://admin.example.com/<.*>", "methods": ["GET"]},
             "authenticators": [cookie], "authorizer": {"handler": "deny"}, "mutators": [{"handler": "noop"}]}
    play2["access_rules"]["rules"].append(admin)
    play2["authorizers"]["deny"] = {"enabled": True}
    play2["mutators"]["noop"] = {"enabled": True}
    play2["filter_state"] = {"email": "{{ print .Extra.identity.traits.email }}"}
    return json.dumps(play2)


def readme_block(marker):
    """The fenced YAML block right after the README's `<!-- marker: … -->` line."""
    text = (ROOT / "README.md").read_text()
    found = re.search(r"<!-- " + re.escape(marker) + r":[^\n]*-->\n```yaml\n(.*?)```", text, re.S)
    assert found, f"README has no {marker} block"
    return found.group(1)


@pytest.fixture(scope="module")
def envoy(upstream, kratos):
    access_log = yaml.safe_load(readme_block("identity-access-log"))["access_log"]
    assert access_log[0]["typed_config"]["path"] == "/dev/stdout"
    access_log[0]["typed_config"]["path"] = "${ACCESS_LOG}"
    with start_envoy(config(), upstream, kratos, access_log=yaml.safe_dump(access_log),
                     after=readme_block("identity-rbac")) as e:
        yield e


def session(name):
    return [("Cookie", f"ory_kratos_session={name}")]


def fields(line):
    """The `key=value` fields of a README-format access log line, and its status."""
    status = int(re.search(r'" (\d{3}) ', line).group(1))
    return status, dict(re.findall(r"(\w+)=(\S+)", line))


def test_access_log_and_rbac_read_the_identity(envoy):
    requests = [
        ("echo.example.com", session("valid-alice")),
        ("echo.example.com", session("valid-bob")),
        ("echo.example.com", session("expired")),
        ("admin.example.com", session("valid-alice")),
        ("echo.example.com", []),
    ]
    responses = [request(envoy.port, "/notes", host=host, headers=headers) for host, headers in requests]
    # alice is allowed by portcullis and by RBAC's CEL condition (a string comparison).
    assert upstream_saw(responses[0])["path"] == "/notes"
    # bob, and the guest, are allowed by portcullis and refused by RBAC.
    for refused in (responses[1], responses[4]):
        assert refused.status == 403 and refused.body == b"RBAC: access denied", refused.body
    assert [r.status for r in responses[2:4]] == [401, 403]

    lines = [envoy.access_line(i) for i in range(len(requests))]
    logged = [fields(line) for line in lines]

    def allowed(subject, authenticator="cookie_session"):
        return {"subject": subject, "rule": "echo-kratos", "decision": "allow", "authenticator": authenticator}

    assert logged[0] == (200, allowed("alice")), lines[0]
    assert logged[1] == (403, allowed("bob")), lines[1]
    assert logged[2] == (401, {"subject": "-", "rule": "echo-kratos", "decision": "deny",
                               "authenticator": "-"}), lines[2]
    # Refused after authenticating: who it was stays in the log.
    assert logged[3] == (403, {"subject": "alice", "rule": "admin", "decision": "deny",
                               "authenticator": "cookie_session"}), lines[3]
    assert logged[4] == (403, allowed("guest", "anonymous")), lines[4]
    # No credential reaches the log.
    assert not any("valid-" in line for line in lines), lines
