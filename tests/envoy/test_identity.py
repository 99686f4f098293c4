"""The caller's identity for the rest of Envoy (README: "The caller's identity for the rest of
Envoy"), in real Envoy 1.40: the README's access log format and RBAC filter, copied from the
README itself, after portcullis with Kratos sessions. The access log shows the subject and rule of
allowed requests and the rule and decision of denied ones; RBAC's CEL condition lets one subject
through and refuses another, which it can only do if the subject was declared a string."""

import re

import pytest
import yaml

from conftest import ROOT, request, start_envoy, upstream_saw

CONFIG = """
filter_state:
  email: "{{ print .Extra.identity.traits.email }}"
access_rules:
  rules:
    - id: notes
      match: { url: "http://echo.example.com/notes", methods: [GET] }
      authenticators: [{ handler: cookie_session }]
      authorizer: { handler: allow }
      mutators: [{ handler: noop }]
    - id: admin
      match: { url: "http://echo.example.com/admin", methods: [GET] }
      authenticators: [{ handler: cookie_session }]
      authorizer: { handler: deny }
      mutators: [{ handler: noop }]
authenticators:
  cookie_session:
    enabled: true
    config:
      check_session_url: http://kratos-public.auth/sessions/whoami
      only: [ory_kratos_session]
      preserve_path: true
      subject_from: identity.traits.name.first
      extra_from: "@this"
authorizers: { allow: { enabled: true }, deny: { enabled: true } }
mutators: { noop: { enabled: true } }
errors: { handlers: { json: { enabled: true, config: { verbose: true } } } }
clusters: { "http://kratos-public.auth": kratos }
"""


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
    with start_envoy(CONFIG, upstream, kratos, access_log=yaml.safe_dump(access_log),
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
        ("/notes", session("valid-alice")),
        ("/notes", session("valid-bob")),
        ("/notes", session("expired")),
        ("/admin", session("valid-alice")),
        ("/notes", []),
    ]
    responses = [request(envoy.port, path, headers=headers) for path, headers in requests]
    # alice is allowed by portcullis and by RBAC's CEL condition (a string comparison).
    assert upstream_saw(responses[0])["path"] == "/notes"
    # bob is allowed by portcullis, refused by RBAC.
    assert responses[1].status == 403 and responses[1].body == b"RBAC: access denied", responses[1].body
    assert [r.status for r in responses[2:]] == [401, 403, 401]

    lines = [envoy.access_line(i) for i in range(len(requests))]
    logged = [fields(line) for line in lines]
    assert logged[0] == (200, {"subject": "alice", "rule": "notes", "decision": "allow",
                               "authenticator": "cookie_session"}), lines[0]
    assert logged[1] == (403, {"subject": "bob", "rule": "notes", "decision": "allow",
                               "authenticator": "cookie_session"}), lines[1]
    assert logged[2] == (401, {"subject": "-", "rule": "notes", "decision": "deny",
                               "authenticator": "-"}), lines[2]
    # Refused after authenticating: who it was stays in the log.
    assert logged[3] == (403, {"subject": "alice", "rule": "admin", "decision": "deny",
                               "authenticator": "cookie_session"}), lines[3]
    assert logged[4][1]["decision"] == "deny" and logged[4][1]["rule"] == "notes", lines[4]
    # No credential reaches the log.
    assert not any("valid-" in line for line in lines), lines
