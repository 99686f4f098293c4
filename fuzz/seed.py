#!/usr/bin/env python3
"""Writes the seed inputs of every fuzz target into fuzz/corpus/<target>/ from what the project
already has: filter-config/, the scenario tables, the TEST keys (tests/keys) and Kratos' own
session fixtures (shared/reference/kratos-sessions). Run once before the first fuzzing run;
`cargo fuzz cmin` then keeps what adds coverage. It also writes fuzz/dicts/config.dict, the words a
configuration is made of, so that libFuzzer's mutations can put a whole key in place instead of
finding it byte by byte. Usage: .venv/bin/python fuzz/seed.py"""

import hashlib
import json
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests/support"))
import mint  # noqa: E402

SESSIONS = ROOT.parent / "shared/reference/kratos-sessions"
SCENARIOS = sorted((ROOT / "tests/scenarios").glob("*.yaml"))
SCHEMA = ROOT.parent / "shared/reference/oathkeeper-config.schema.json"


# Lookaround rules with subjects that reach their assertions (the matcher target compares them
# with a backtracking engine).
LOOKAROUND = [
    ("https://localhost/users/<(?!admin).*>", "https://localhost/users/manager"),
    ("https://localhost/users/<(?!admin).*>", "https://localhost/users/admin"),
    ("https://localhost/users/<(?=admin)[a-z]+>", "https://localhost/users/administrator"),
    ("https://l/files/<(?!.*\\.\\.)[^?]*(?<!\\.bak)>>", "https://l/files/a/b.txt>"),
    ("http://a/<.*>/<(?!admin$)[^/]+>", "http://a/x/y/admin"),
    ("http://a/<[a-z]*(?<=a|dm)>>/<.*(?!x)>", "http://a/adm>/zz"),
    ("http://a/<a*(?<!b)a*(?=a)a*a*z>>", "http://a/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaz"),
]


def put(target, data):
    data = data if isinstance(data, bytes) else data.encode()
    folder = ROOT / "fuzz/corpus" / target
    folder.mkdir(parents=True, exist_ok=True)
    (folder / ("seed-" + hashlib.sha1(data).hexdigest()[:16])).write_bytes(data)


def scenario_strings(pattern):
    found = set()
    for path in SCENARIOS:
        found.update(re.findall(pattern, path.read_text()))
    return sorted(found)


def schema_words(node, words):
    """Property names and string enum values anywhere in the Oathkeeper config schema."""
    if isinstance(node, dict):
        if isinstance(node.get("properties"), dict):
            words.update(node["properties"])
        words.update(v for v in node.get("enum", []) if isinstance(v, str) and v)
        for value in node.values():
            schema_words(value, words)
    elif isinstance(node, list):
        for value in node:
            schema_words(value, words)
    return words


def config_dict():
    """The schema's words plus the keys portcullis adds (its serde field names and renames)."""
    words = schema_words(json.loads(SCHEMA.read_text()), set())
    struct = re.compile(r"#\[derive\([^)]*Deserialize[^)]*\)\][^{;]*?struct [^{;]*\{(.*?)\n\}", re.S)
    for path in sorted((ROOT / "src").rglob("*.rs")):
        text = path.read_text()
        for body in struct.findall(text):
            words.update(re.findall(r"^\s+(?:pub(?:\(\w+\))? )?([a-z][a-z0-9_]*):", body, re.M))
        words.update(re.findall(r'(?:rename|alias) = "([^"]+)"', text))
    words.update(["{{", "}}", "<.*>", "<**>", "://", "true", "false", "null"])
    lines = "".join(json.dumps(w) + "\n" for w in sorted(words))
    (ROOT / "fuzz/dicts").mkdir(exist_ok=True)
    (ROOT / "fuzz/dicts/config.dict").write_text(lines)


def main():
    config_dict()
    sessions = [p.read_bytes() for p in sorted(SESSIONS.glob("*.json"))]
    for path in sorted((ROOT / "filter-config").glob("*.yaml")) + sorted(
            (ROOT / "tests/scenarios/bad-configs").glob("*.yaml")):
        put("config", path.read_bytes())
    put("config", json.dumps({"access_rules": {"rules": []}, "clusters": {}}))
    templates = scenario_strings(r'"(\{\{.*?\}\})"') + scenario_strings(r"'(\{\{.*?\}\})'")
    for i, t in enumerate(templates):
        put("template", t.encode() + b"\0" + sessions[i % len(sessions)] + b"\0a=1&b=%20")
    paths = scenario_strings(r'url: "?https?://[^/\s"]+(/[^\s"]*)') + [
        "/a/./b/../c//d", "/%2e%2E/x", "/a%2fb", "/%252e", "/a;b/..;/c", "/caf%C3%A9?q=1#f",
        "/x?y=%zz", "/..", "//", "/a\\b", "/%00"]
    for p in paths:
        put("path", p.encode() + b"\0" + b"a b&c=d/\xc3\xa9")
    for url in scenario_strings(r'url: "(https?://[^"]+)"'):
        put("matcher", b"\0" + url.encode() + b"\0http://echo.example.com/a/b\0GET")
    for url in ["http://*.example.com/**", "https://{a,b}.test/[!x]?/*", "http://h/<*>/**"]:
        put("matcher", b"\1" + url.encode() + b"\0http://a.example.com/x/y\0post")
    for url, subject in LOOKAROUND:
        put("matcher", b"\0" + url.encode() + b"\0" + subject.encode() + b"\0GET")
    now = 1_717_200_000
    for alg in ["RS256", "RS384", "PS256", "ES256", "ES384", "EdDSA", "HS256"]:
        claims = {"sub": "s", "aud": ["api"], "iss": "https://issuer.example/", "scp": "machines.read",
                  "iat": now, "nbf": now, "exp": now + 3600}
        put("jwt", mint.mint(claims, alg=alg))
    put("jwt", mint.mint({"sub": "x", "exp": now - 1}, kid="rsa-2"))
    put("jwt", mint.mint({"sub": "x", "scope": "a b"}, tamper=True))
    for path in sorted((ROOT / "tests/keys").glob("*.json")):
        put("jwks", path.read_bytes())
    for path in ["identity.id", "@this", "identity.traits.email", "a\\.b", "devices.#",
                 "authentication_methods.0.method", "identity.verifiable_addresses.#.value"]:
        put("gjson", path.encode() + b"\0" + sessions[0])
    cookies = ["ory_kratos_session=abc; theme=dark", 'a=1; ory_kratos_session="quoted"', ";;=x; b=2",
               "ory_kratos_session=", " spaced = v ; x"]
    accepts = ["text/html,application/xhtml+xml;q=0.9,*/*;q=0.8", "application/json", "", "*/*",
               "text/*", "application/json, text/html"]
    for i, c in enumerate(cookies):
        put("headers", f"{c}\0b=1\0{accepts[i % len(accepts)]}\0text/*".encode())
    for i, body in enumerate(sessions):
        put("whoami", bytes([i]) + body)
    put("whoami", b"\0<html>not json</html>")
    put("whoami", b"\6" + json.dumps({"error": {"code": 401}}).encode())


if __name__ == "__main__":
    main()
