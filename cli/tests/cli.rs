//! The built `portcullis` binary on the shipped configurations and the fixtures under
//! `cli/tests/fixtures`: exit codes, what `check` lists, what `explain` says for denied,
//! unmatched, ambiguous, scripted and live requests, and `import` output that loads again.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_portcullis");
const SHA: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn fixture(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
        .display()
        .to_string()
}

/// The base the README's walk-through imports with.
fn base() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples/istio-base.yaml")
        .display()
        .to_string()
}

fn play2() -> String {
    root()
        .join("filter-config/play2.yaml")
        .display()
        .to_string()
}

/// Runs the binary with `args`, feeding `stdin`.
fn run(args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new(BIN)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn portcullis");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin)
        .expect("write stdin");
    child.wait_with_output().expect("portcullis ran")
}

fn ok(args: &[&str]) -> String {
    let out = run(args, b"");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{args:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

/// A whoami answer for alice, as a file of this test's own.
fn alice_session(test: &str) -> String {
    scratch(
        test,
        "session.json",
        r#"{"active": true, "identity": {"id": "id-alice", "traits": {"email": "alice@example.com"}}}"#,
    )
}

/// A file in a directory of this test's own.
fn scratch(test: &str, name: &str, contents: &str) -> String {
    let dir = std::env::temp_dir().join(format!("portcullis-cli-{}-{test}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("scratch dir");
    let path = dir.join(name);
    std::fs::write(&path, contents).expect("write scratch file");
    path.display().to_string()
}

fn imported_config() -> String {
    ok(&["import", &fixture("rules"), "--base", &base()])
}

#[test]
fn check_lists_every_rule_of_each_shipped_config() {
    let dir = root().join("filter-config");
    let mut configs: Vec<_> = std::fs::read_dir(&dir)
        .expect("filter-config")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    configs.sort();
    assert!(configs.len() >= 3, "the shipped configurations are there");
    for config in configs {
        let out = ok(&["check", &config.display().to_string()]);
        assert!(out.contains("configuration loads"), "{out}");
        assert!(
            out.contains("\nrule "),
            "{config:?} lists its rules:\n{out}"
        );
    }
    let out = ok(&["check", &play2()]);
    assert!(
        out.contains("configuration loads: 2 rules, 1 JWKS URL"),
        "{out}"
    );
    assert!(out.contains(
        "rule echo-kratos\n  match           http<s?>://echo.example.com</?.*>\n  methods         GET, POST, PUT, PATCH, DELETE\n  authenticators  cookie_session, jwt, anonymous\n  authorizer      allow\n  mutators        header\n"
    ), "{out}");
    assert!(out.contains("rule api-session-token"), "{out}");
}

#[test]
fn check_refuses_a_broken_config_naming_rule_and_field() {
    let broken = std::fs::read_to_string(play2()).expect("play2").replacen(
        "handler: allow",
        "handler: deny",
        1,
    );
    let out = run(&["check", "-"], broken.as_bytes());
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(
            "rule \"echo-kratos\": authorizer (deny): handler \"deny\" is disabled; set authorizers.deny.enabled: true"
        ),
        "{err}"
    );
    assert!(out.stdout.is_empty());

    let out = run(&["check", "-"], b"access_rules: { rules: [] }\nbogus: 1\n");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("bogus"));
}

#[test]
fn usage_errors_exit_2() {
    for args in [
        &[][..],
        &["frobnicate"][..],
        &["check"][..],
        &["check", "a", "b"][..],
        &["explain", "cfg", "GET"][..],
        &["explain", &play2(), "GET", "not-a-url"][..],
        &[
            "explain",
            &play2(),
            "GET",
            "http://a.test/",
            "--answer",
            "kratos",
        ][..],
        &["import", &fixture("rules"), "--name", "x"][..],
        &["import", &fixture("rules"), "--wasmplugin", "--name", "x"][..],
    ] {
        let out = run(args, b"");
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(String::from_utf8_lossy(&out.stderr).contains("usage:"));
    }
}

#[test]
fn explain_a_request_without_credentials_to_a_session_rule_is_401() {
    let out = ok(&[
        "explain",
        &play2(),
        "GET",
        "http://api.example.com/orders/7",
    ]);
    assert!(out.contains("rule            api-session-token"), "{out}");
    assert!(
        out.contains("captures        [0] \"\"  [1] \"/orders/7\""),
        "{out}"
    );
    assert!(
        out.contains("1. bearer_token              not responsible"),
        "{out}"
    );
    assert!(
        out.contains("no authenticator was responsible: 401"),
        "{out}"
    );
    assert!(
        out.contains("authorizer      allow                        not reached"),
        "{out}"
    );
    assert!(
        out.contains("DENY: 401 Unauthorized (reason_id authentication_handler_no_match)"),
        "{out}"
    );
    assert!(out.contains("reply           401"), "{out}");
    assert!(
        out.contains("\"message\":\"Access credentials are invalid\""),
        "{out}"
    );
    assert!(!out.contains("callout:"), "no credential, no call:\n{out}");
}

#[test]
fn explain_reports_a_callout_it_did_not_make_and_its_consequence() {
    let out = ok(&[
        "explain",
        &play2(),
        "GET",
        "http://echo.example.com/x",
        "-H",
        "Cookie: ory_kratos_session=valid-alice-secret",
    ]);
    assert!(
        out.contains("callout: GET http://kratos-public.auth/sessions/whoami   (cluster kratos, timeout 2000 ms)"),
        "{out}"
    );
    assert!(
        out.contains("cookie: ory_kratos_session=<redacted>"),
        "{out}"
    );
    assert!(
        !out.contains("valid-alice-secret"),
        "credentials stay out:\n{out}"
    );
    assert!(
        out.contains("NOT PERFORMED (no --live, no --answer for kratos)"),
        "{out}"
    );
    assert!(out.contains("DENY: 503 Service Unavailable"), "{out}");
    assert!(
        out.contains("2. jwt                       not reached"),
        "{out}"
    );
    assert!(
        out.contains("note            1 callout got no real answer"),
        "{out}"
    );
}

#[test]
fn explain_no_match_says_why() {
    let out = ok(&["explain", &play2(), "GET", "http://nothing.example.com/"]);
    assert!(
        out.contains("rule            none matches GET http://nothing.example.com/ (404)"),
        "{out}"
    );
    assert!(
        out.contains("the subject has no \"://echo.example.com\""),
        "{out}"
    );
    assert!(
        out.contains("DENY: 404 Not Found (reason_id rule_no_match)"),
        "{out}"
    );

    let out = ok(&["explain", &play2(), "OPTIONS", "http://echo.example.com/x"]);
    assert!(
        out.contains("- echo-kratos   http<s?>://echo.example.com</?.*>   the pattern matches, but OPTIONS is not in [GET, POST, PUT, PATCH, DELETE]"),
        "{out}"
    );
    assert!(out.contains("DENY: 404"), "{out}");
}

#[test]
fn explain_several_matches_lists_them() {
    let config = scratch("several", "config.yaml", &imported_config());
    let out = ok(&["explain", &config, "GET", "http://echo.example.com/admin"]);
    assert!(out.contains("rule            2 rules match"), "{out}");
    assert!(
        out.contains("  - echo-session   http://echo.example.com/<.*>   [GET, POST]"),
        "{out}"
    );
    assert!(
        out.contains("  - locked   http://echo.example.com/admin<(/.*)?>   [GET]"),
        "{out}"
    );
    assert!(
        out.contains("DENY: 500 Internal Server Error (reason_id rule_many_matches)"),
        "{out}"
    );
}

#[test]
fn explain_with_a_scripted_answer_forwards_the_identity() {
    let session = alice_session("scripted");
    let out = ok(&[
        "explain",
        &play2(),
        "GET",
        "http://echo.example.com/x?q=1",
        "-H",
        "Cookie: ory_kratos_session=abc123",
        "--answer",
        &format!("kratos=200:@{session}"),
    ]);
    assert!(
        out.contains("1. cookie_session            responsible: authenticated"),
        "{out}"
    );
    assert!(out.contains("answer: 200, "), "{out}");
    assert!(out.contains("scripted by --answer kratos=200:@"), "{out}");
    assert!(
        out.contains("ALLOW: forwarded upstream as subject \"id-alice\""),
        "{out}"
    );
    assert!(out.contains("  + x-user-id: id-alice"), "{out}");
    assert!(out.contains("  + x-user-email: alice@example.com"), "{out}");
    assert!(out.contains("    :path: /x?q=1"), "{out}");

    let out = ok(&[
        "explain",
        &play2(),
        "GET",
        "http://echo.example.com/x",
        "-H",
        "Cookie: ory_kratos_session=abc123",
        "--answer",
        "http://kratos-public.auth=401",
    ]);
    assert!(
        out.contains("responsible, and rejected the credentials"),
        "{out}"
    );
    assert!(out.contains("DENY: 401"), "{out}");
}

#[test]
fn explain_live_calls_the_origin_and_uses_the_answer() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let server = std::thread::spawn(move || {
        let (mut conn, _) = listener.accept().expect("accept");
        conn.set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        let mut head = Vec::new();
        let mut buf = [0u8; 4096];
        while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 65536 {
            let n = conn.read(&mut buf).expect("read");
            if n == 0 {
                break;
            }
            head.extend_from_slice(&buf[..n]);
        }
        let body = r#"{"identity": {"id": "id-live", "traits": {}}}"#;
        let reply = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        conn.write_all(reply.as_bytes()).expect("write");
        String::from_utf8_lossy(&head).into_owned()
    });
    let origin = format!("http://127.0.0.1:{port}");
    let config = std::fs::read_to_string(play2())
        .expect("play2")
        .replace("http://kratos-public.auth", &origin);
    let config = scratch("live", "config.yaml", &config);
    let out = ok(&[
        "explain",
        &config,
        "GET",
        "http://echo.example.com/x",
        "-H",
        "Cookie: ory_kratos_session=live-cookie",
        "--live",
    ]);
    let seen = server.join().expect("server");
    assert!(
        seen.starts_with("GET /sessions/whoami HTTP/1.1\r\n"),
        "{seen}"
    );
    assert!(
        seen.contains("cookie: ory_kratos_session=live-cookie"),
        "{seen}"
    );
    assert!(
        out.contains(&format!("callout: GET {origin}/sessions/whoami")),
        "{out}"
    );
    assert!(
        out.contains("answer: 200, 45 bytes; performed live"),
        "{out}"
    );
    assert!(
        out.contains("ALLOW: forwarded upstream as subject \"id-live\""),
        "{out}"
    );

    // https is not spoken: the call is reported, not made, and counts as failed.
    let tls = std::fs::read_to_string(play2())
        .expect("play2")
        .replace("http://kratos-public.auth", "https://kratos-public.auth");
    let tls = scratch("live", "tls.yaml", &tls);
    let out = ok(&[
        "explain",
        &tls,
        "GET",
        "http://echo.example.com/x",
        "-H",
        "Cookie: ory_kratos_session=c",
        "--live",
    ]);
    assert!(
        out.contains("live call failed: https is not supported by --live"),
        "{out}"
    );
    assert!(out.contains("DENY: 503"), "{out}");
}

#[test]
fn import_maester_rules_into_a_plugin_config_that_loads() {
    let yaml = imported_config();
    let doc: serde_yaml::Value = serde_yaml::from_str(&yaml).expect("YAML");
    let rules = doc["access_rules"]["rules"].as_sequence().expect("rules");
    let ids: Vec<&str> = rules.iter().filter_map(|r| r["id"].as_str()).collect();
    // Files sorted by name; the Service between the Rules is skipped.
    assert_eq!(ids, ["echo-session", "locked", "public-health"]);
    let echo = &rules[0];
    assert_eq!(
        echo["upstream"]["preserve_host"],
        serde_yaml::Value::Bool(true)
    );
    assert_eq!(echo["upstream"]["strip_path"].as_str(), Some("/api"));
    assert!(echo.get("configMapName").is_none() && echo.get("spec").is_none());
    assert_eq!(
        rules[1]["authenticators"][0]["handler"].as_str(),
        Some("unauthorized")
    );
    assert_eq!(rules[1]["authorizer"]["handler"].as_str(), Some("deny"));
    assert_eq!(rules[1]["mutators"][0]["handler"].as_str(), Some("noop"));
    assert_eq!(
        doc["authenticators"]["cookie_session"]["config"]["check_session_url"].as_str(),
        Some("http://kratos-public.auth/sessions/whoami"),
        "the base's settings are kept"
    );
    assert_eq!(
        doc["authorizers"]["deny"]["enabled"],
        serde_yaml::Value::Bool(true)
    );

    let out = run(&["check", "-"], yaml.as_bytes());
    assert_eq!(out.status.code(), Some(0));
    let listed = String::from_utf8_lossy(&out.stdout);
    assert!(listed.contains("rule echo-session") && listed.contains("rule public-health"));

    // Without the base the Kratos URL is missing: refused, naming the rule and the field.
    let out = run(&["import", &fixture("rules/maester-rules.yaml")], b"");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("rule \"echo-session\": authenticators[0] (cookie_session)")
            && err.contains("check_session_url"),
        "{err}"
    );
    assert!(out.stdout.is_empty());
}

#[test]
fn import_renders_a_wasmplugin_that_checks_and_explains() {
    let yaml = ok(&[
        "import",
        &fixture("rules/maester-rules.yaml"),
        "--base",
        &base(),
        "--wasmplugin",
        "--name",
        "portcullis",
        "--namespace",
        "shop",
        "--image",
        "oci://registry.example/portcullis:0.1.0",
        "--sha256",
        SHA,
        "--selector",
        "app=echo",
    ]);
    let doc: serde_yaml::Value = serde_yaml::from_str(&yaml).expect("YAML");
    assert_eq!(
        doc["apiVersion"].as_str(),
        Some("extensions.istio.io/v1alpha1")
    );
    assert_eq!(doc["kind"].as_str(), Some("WasmPlugin"));
    assert_eq!(doc["metadata"]["name"].as_str(), Some("portcullis"));
    assert_eq!(doc["metadata"]["namespace"].as_str(), Some("shop"));
    let spec = &doc["spec"];
    assert_eq!(
        spec["selector"]["matchLabels"]["app"].as_str(),
        Some("echo")
    );
    assert_eq!(
        spec["url"].as_str(),
        Some("oci://registry.example/portcullis:0.1.0")
    );
    assert_eq!(spec["sha256"].as_str(), Some(SHA));
    assert_eq!(spec["phase"].as_str(), Some("AUTHN"));
    assert_eq!(spec["failStrategy"].as_str(), Some("FAIL_RELOAD"));
    assert_eq!(
        spec["pluginConfig"]["access_rules"]["rules"][0]["id"].as_str(),
        Some("echo-session")
    );

    // The Done-when walk-through: the WasmPlugin checks, and a request without the session
    // cookie is explained as denied, with no cluster and no proxy.
    let plugin = scratch("wasmplugin", "wasmplugin.yaml", &yaml);
    let out = ok(&["check", &plugin]);
    assert!(out.contains("configuration loads: 2 rules"), "{out}");
    let out = ok(&["explain", &plugin, "GET", "http://echo.example.com/orders"]);
    assert!(out.contains("rule            echo-session"), "{out}");
    assert!(
        out.contains("1. cookie_session            not responsible"),
        "{out}"
    );
    assert!(out.contains("DENY: 401 Unauthorized"), "{out}");

    let bad = run(
        &[
            "import",
            &fixture("rules"),
            "--wasmplugin",
            "--name",
            "p",
            "--image",
            "oci://r/p",
            "--sha256",
            "sha256:abc",
        ],
        b"",
    );
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--sha256 must be 64 lowercase hex"));
}

/// The README's walk-through, verbatim: the shipped Maester Rule to a WasmPlugin, checked, and a
/// request with a session Kratos refuses explained as a 401 with no cluster or proxy.
#[test]
fn the_readme_walk_through_denies_a_refused_session() {
    let rule = root()
        .join("envoy/istio/maester-rule.yaml")
        .display()
        .to_string();
    let digest = "0".repeat(64);
    let plugin = ok(&[
        "import",
        &rule,
        "--base",
        &base(),
        "--wasmplugin",
        "--name",
        "portcullis",
        "--namespace",
        "shop",
        "--selector",
        "app=echo",
        "--image",
        "oci://registry.example.com/portcullis:0.1.0",
        "--sha256",
        &digest,
    ]);
    let file = scratch("walk-through", "wasmplugin.yaml", &plugin);
    assert!(ok(&["check", &file]).contains("echo-kratos"));
    let explained = ok(&[
        "explain",
        &file,
        "GET",
        "http://echo.example.com/orders",
        "-H",
        "Cookie: ory_kratos_session=expired",
        "--answer",
        "http://kratos-public.auth=401",
    ]);
    assert!(explained.contains("DENY: 401 Unauthorized"), "{explained}");
    assert!(
        explained.contains("the session store answered 401"),
        "{explained}"
    );
    assert!(
        !explained.contains("expired"),
        "the cookie is redacted: {explained}"
    );
}

/// envoy/browser.yaml with its `${...}` placeholders filled with a port-shaped number.
fn browser_bootstrap() -> serde_yaml::Value {
    let mut text =
        std::fs::read_to_string(root().join("envoy/browser.yaml")).expect("browser.yaml");
    while let Some(start) = text.find("${") {
        let end = start + text[start..].find('}').expect("placeholder end");
        text.replace_range(start..=end, "1");
    }
    serde_yaml::from_str(&text).expect("browser.yaml is YAML")
}

/// `import` with `--server-config`: the example Oathkeeper configuration's serve.proxy.cors
/// becomes exactly the CORS policy envoy/browser.yaml carries, which tests/envoy/test_browser.py
/// runs in Envoy.
#[test]
fn import_writes_the_cors_policy_envoy_browser_yaml_runs() {
    let policy = scratch("cors", "cors-policy.yaml", "");
    let oathkeeper = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples/oathkeeper.yaml")
        .display()
        .to_string();
    let config = ok(&[
        "import",
        &fixture("rules"),
        "--base",
        &base(),
        "--server-config",
        &oathkeeper,
        "--cors-policy",
        &policy,
    ]);
    assert_eq!(config, imported_config(), "the pluginConfig is unchanged");
    let written = std::fs::read_to_string(&policy).expect("policy written");
    assert!(
        written.starts_with("# Oathkeeper's serve.proxy.cors"),
        "{written}"
    );
    let written: serde_yaml::Value = serde_yaml::from_str(&written).expect("YAML");
    let bootstrap = browser_bootstrap();
    let hcm = &bootstrap["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]
        ["typed_config"];
    let host = &hcm["route_config"]["virtual_hosts"][0];
    assert_eq!(written, host["typed_per_filter_config"]);
    assert_eq!(
        written["envoy.filters.http.cors"]["allow_origin_string_match"][0]["safe_regex"]["regex"]
            .as_str(),
        Some("(?is)https://.*\\.example\\.com")
    );
    // The filter order that makes it work: CORS first, then portcullis.
    let filters: Vec<&str> = hcm["http_filters"]
        .as_sequence()
        .expect("filters")
        .iter()
        .filter_map(|f| f["name"].as_str())
        .collect();
    assert_eq!(
        filters,
        [
            "envoy.filters.http.cors",
            "envoy.filters.http.wasm",
            "envoy.filters.http.router"
        ]
    );
}

#[test]
fn import_translates_serve_proxy_cors_with_oathkeeper_defaults_and_refuses_the_rest() {
    let import = |config: &str, policy: &str| {
        let file = scratch("cors-defaults", "oathkeeper.yaml", config);
        run(
            &[
                "import",
                &fixture("rules"),
                "--base",
                &base(),
                "--server-config",
                &file,
                "--cors-policy",
                policy,
            ],
            b"",
        )
    };
    let policy = scratch("cors-defaults", "policy.yaml", "");
    let out = import("serve: { proxy: { cors: { enabled: true } } }", &policy);
    assert_eq!(out.status.code(), Some(0));
    let written: serde_yaml::Value =
        serde_yaml::from_str(&std::fs::read_to_string(&policy).expect("policy")).expect("YAML");
    let p = &written["envoy.filters.http.cors"];
    assert_eq!(
        p["allow_origin_string_match"],
        serde_yaml::from_str::<serde_yaml::Value>("[{ safe_regex: { regex: '.*' } }]").unwrap()
    );
    assert_eq!(
        p["allow_methods"].as_str(),
        Some("GET,POST,PUT,PATCH,DELETE")
    );
    assert_eq!(
        p["allow_headers"].as_str(),
        Some("Authorization,Content-Type")
    );
    assert_eq!(p["expose_headers"].as_str(), Some("Content-Type"));
    assert_eq!(p["allow_credentials"], serde_yaml::Value::Bool(false));
    assert_eq!(
        p["forward_not_matching_preflights"],
        serde_yaml::Value::Bool(false)
    );
    assert!(p.get("max_age").is_none(), "max_age 0 sends none");

    for (config, error) in [
        ("serve: { proxy: { port: 4455 } }", "no serve.proxy.cors"),
        (
            "serve: { proxy: { cors: { enabled: false } } }",
            "enabled is not true",
        ),
        (
            "serve: { proxy: { cors: { enabled: true, allowed_origin: [x] } } }",
            "unknown key allowed_origin",
        ),
        (
            "serve: { proxy: { cors: { enabled: true, max_age: ten } } }",
            "max_age must be",
        ),
    ] {
        let missing = scratch("cors-defaults", "never.yaml", "");
        std::fs::remove_file(&missing).expect("remove");
        let out = import(config, &missing);
        assert_eq!(out.status.code(), Some(1), "{config}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains(error),
            "{config}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            out.stdout.is_empty() && !Path::new(&missing).exists(),
            "nothing written"
        );
    }
    let usage = run(
        &["import", &fixture("rules"), "--server-config", &policy],
        b"",
    );
    assert_eq!(usage.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&usage.stderr).contains("--server-config needs --cors-policy"));
}

/// The project venv's Python (`make venv`), which has `jsonschema`.
fn venv_python() -> PathBuf {
    let python = root().join(".venv/bin/python");
    assert!(
        python.exists(),
        "{} is missing: run `make venv` (the schema test validates with its jsonschema)",
        python.display()
    );
    python
}

/// `explain --json` requests for each example configuration: every file in `filter-config/`
/// must be listed here, and every document must validate against `docs/explain.schema.json`.
fn json_cases(session: &str, body: &str) -> Vec<(&'static str, Vec<String>)> {
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    let browser = s(&[
        "GET",
        "http://echo.example.com/x",
        "-H",
        "Cookie: ory_kratos_session=abc",
    ]);
    let answered = [
        browser.clone(),
        s(&["--answer", &format!("kratos=200:@{session}")]),
    ]
    .concat();
    vec![
        ("play1.yaml", s(&["GET", "http://echo.example.com/a?b=1"])),
        ("play1.yaml", s(&["GET", "http://other.example.com/"])),
        ("play1.yaml", s(&["OPTIONS", "http://echo.example.com/"])),
        ("play2.yaml", answered),
        ("play2.yaml", browser),
        (
            "play2.yaml",
            s(&[
                "GET",
                "http://api.example.com/x",
                "-H",
                "X-Session-Token: t",
                "--answer",
                "kratos=429[Retry-After: 7]",
            ]),
        ),
        (
            "play3.yaml",
            s(&[
                "GET",
                "http://api.example.com/machines/1",
                "-H",
                // {"alg":"RS256","kid":"k1"}, claims play3 accepts: the keys are fetched.
                "Authorization: Bearer eyJhbGciOiJSUzI1NiIsImtpZCI6ImsxIn0.eyJzdWIiOiJtIiwiYXVkIjoiaHR0cHM6Ly9tYW5hZ2VtZW50LmF6dXJlLmNvbSIsImlzcyI6Imh0dHBzOi8vc3RzLndpbmRvd3MubmV0LzExMTExMTExLTIyMjItMzMzMy00NDQ0LTU1NTU1NTU1NTU1NS8iLCJleHAiOjQxMDI0NDQ4MDB9.c2ln",
            ]),
        ),
        (
            "keto.yaml",
            s(&[
                "GET",
                "http://files.example.com/files/f-1",
                "-H",
                "Cookie: ory_kratos_session=abc",
                "--answer",
                &format!("kratos=200:@{session}"),
                "--answer",
                "keto=200:{\"allowed\":true}",
            ]),
        ),
        (
            "oauth2.yaml",
            s(&[
                "POST",
                "http://uploads.example.com/u",
                "--body",
                body,
                "--answer",
                "authz=200[X-Policy: scanned]",
            ]),
        ),
        (
            "oauth2.yaml",
            s(&[
                "GET",
                "http://intranet.example.com/",
                "--peer",
                "10.0.0.1:5",
            ]),
        ),
    ]
}

#[test]
fn explain_json_validates_against_its_schema_for_every_example() {
    let session = alice_session("json");
    let body = scratch("json", "upload.txt", "file contents");
    let cases = json_cases(&session, &body);
    let mut examples: Vec<String> = std::fs::read_dir(root().join("filter-config"))
        .expect("filter-config")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".yaml"))
        .collect();
    examples.sort();
    for example in &examples {
        assert!(
            cases.iter().any(|(c, _)| c == example),
            "filter-config/{example} has no explain --json case"
        );
    }
    let mut docs = Vec::new();
    for (config, args) in &cases {
        let config = root()
            .join("filter-config")
            .join(config)
            .display()
            .to_string();
        let mut argv: Vec<&str> = vec!["explain", &config];
        argv.extend(args.iter().map(String::as_str));
        argv.push("--json");
        let out = ok(&argv);
        let doc: serde_json::Value = serde_json::from_str(&out)
            .unwrap_or_else(|e| panic!("{argv:?}: not JSON ({e}): {out}"));
        assert_eq!(doc["version"], 1, "{out}");
        docs.push(doc);
    }
    // What the documents say, beyond their shape.
    let d = |i: usize| &docs[i];
    assert_eq!(d(0)["decision"]["outcome"], "allow");
    assert_eq!(d(0)["filter_state"]["subject"], "guest");
    assert_eq!(d(0)["match"]["rule"]["id"], "echo-anonymous");
    assert_eq!(d(1)["match"]["outcome"], "none");
    assert_eq!(d(1)["reply"]["status"], 404);
    assert_eq!(d(2)["match"]["wrong_method"][0]["id"], "echo-anonymous");
    assert_eq!(d(3)["decision"]["subject"], "id-alice");
    assert_eq!(d(3)["decision"]["authenticator"], "cookie_session");
    let kratos = &d(3)["match"]["authenticators"][0]["callouts"][0];
    assert_eq!(kratos["cluster"], "kratos");
    assert_eq!(kratos["how"], "scripted");
    assert_eq!(kratos["headers"][0][1], "ory_kratos_session=<redacted>");
    assert!(d(3)["upstream"]["headers"]
        .as_array()
        .unwrap()
        .iter()
        .any(|h| h["name"] == "x-user-id" && h["value"] == "id-alice" && h["change"] == "set"));
    assert_eq!(d(4)["unperformed_callouts"], 1);
    assert_eq!(d(4)["reply"]["status"], 503);
    // The scripted 429's Retry-After reaches the reply.
    let answer = &d(5)["match"]["authenticators"][0]["callouts"][0]["answer"];
    assert_eq!(
        answer["headers"][0],
        serde_json::json!(["retry-after", "7"])
    );
    assert_eq!(d(5)["reply"]["status"], 429, "{}", d(5));
    assert!(
        d(5)["reply"]["headers"]
            .as_array()
            .unwrap()
            .contains(&serde_json::json!(["retry-after", "7"])),
        "{}",
        d(5)
    );
    assert!(!d(6)["jwks_fetches"].as_array().unwrap().is_empty());
    assert_eq!(d(7)["match"]["authorizer"]["verdict"], "allowed");
    // --body reaches the remote authorizer; the policy's forwarded header reaches the upstream.
    let policy = &d(8)["match"]["authorizer"]["callouts"][0];
    // Bodies are redacted unless leak_sensitive_values: its size shows it was sent.
    assert!(
        policy["body"].as_str().unwrap().starts_with("<13 bytes"),
        "{}",
        d(8)
    );
    assert!(
        d(8)["upstream"]["headers"]
            .as_array()
            .unwrap()
            .iter()
            .any(|h| h["name"] == "x-policy" && h["value"] == "scanned"),
        "{}",
        d(8)
    );
    assert_eq!(d(9)["decision"]["outcome"], "deny");
    assert_eq!(d(9)["filter_state"]["rule"], "intranet");

    let several = scratch("json", "several.yaml", &imported_config());
    let out = ok(&[
        "explain",
        &several,
        "GET",
        "http://echo.example.com/admin",
        "--json",
    ]);
    let doc: serde_json::Value = serde_json::from_str(&out).expect("JSON");
    assert_eq!(doc["match"]["outcome"], "several");
    docs.push(doc);

    let all = scratch(
        "json",
        "documents.json",
        &serde_json::Value::from(docs).to_string(),
    );
    let schema = root().join("docs/explain.schema.json");
    let check = Command::new(venv_python())
        .args([
            "-c",
            "import json, sys, jsonschema\n\
             schema = json.load(open(sys.argv[1]))\n\
             jsonschema.Draft202012Validator.check_schema(schema)\n\
             v = jsonschema.Draft202012Validator(schema)\n\
             for i, doc in enumerate(json.load(open(sys.argv[2]))):\n\
             \x20   for e in v.iter_errors(doc):\n\
             \x20       print(i, list(e.absolute_path), e.message)\n\
             \x20       sys.exit(1)\n",
        ])
        .arg(&schema)
        .arg(&all)
        .output()
        .expect("python runs");
    assert!(
        check.status.success(),
        "explain --json does not validate against {}:\n{}{}",
        schema.display(),
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr)
    );
}
