//! Cache poisoning: two requests that differ only in something the session store, the token
//! check or the hydrator API uses must never share a cache entry. Each test caches an answer
//! for request A, then sends B and proves B caused its own callout (or was refused); a repeat
//! of A shows the cache was on and would have answered.

mod common;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use common::mint::{mint, JwtSpec};
use common::scenario::{self, Ending};
use common::world::{forwarded_user, ok, Store, Vm, NOW, ROOT};
use std::rc::Rc;

/// Rules on several hosts, each a differently configured session check, all cached.
const SESSIONS: &str = r#"
access_rules:
  rules:
    - id: cookie
      match: { url: "http://cookie.example.com/<.*>", methods: [GET, POST] }
      authenticators: [{ handler: cookie_session }]
      authorizer: { handler: allow }
      mutators: [{ handler: header }]
    - id: cookie-other-subject
      match: { url: "http://subject.example.com/<.*>", methods: [GET] }
      authenticators: [{ handler: cookie_session, config: { subject_from: identity.traits.email } }]
      authorizer: { handler: allow }
      mutators: [{ handler: header }]
    - id: cookie-other-store
      match: { url: "http://store.example.com/<.*>", methods: [GET] }
      authenticators: [{ handler: cookie_session, config: { check_session_url: "http://kratos-public.auth/other/whoami" } }]
      authorizer: { handler: allow }
      mutators: [{ handler: header }]
    - id: cookie-path-query
      match: { url: "http://path.example.com/<.*>", methods: [GET] }
      authenticators: [{ handler: cookie_session, config: { preserve_path: false, preserve_query: false } }]
      authorizer: { handler: allow }
      mutators: [{ handler: header }]
    - id: cookie-forced
      match: { url: "http://forced.example.com/<.*>", methods: [GET, POST] }
      authenticators: [{ handler: cookie_session, config: { force_method: GET } }]
      authorizer: { handler: allow }
      mutators: [{ handler: header }]
    - id: bearer
      match: { url: "http://bearer.example.com/<.*>", methods: [GET] }
      authenticators: [{ handler: bearer_token }]
      authorizer: { handler: allow }
      mutators: [{ handler: header }]
    - id: bearer-query
      match: { url: "http://query.example.com/<.*>", methods: [GET] }
      authenticators: [{ handler: bearer_token, config: { token_from: { query_parameter: token }, preserve_query: false } }]
      authorizer: { handler: allow }
      mutators: [{ handler: header }]
authenticators:
  cookie_session:
    enabled: true
    config:
      check_session_url: http://kratos-public.auth/sessions/whoami
      only: [ory_kratos_session]
      forward_http_headers: [x-tenant]
      subject_from: identity.id
      cache: { enabled: true, ttl: 60s }
  bearer_token:
    enabled: true
    config:
      check_session_url: http://kratos-public.auth/sessions/whoami
      subject_from: identity.id
      cache: { enabled: true, ttl: 60s }
authorizers: { allow: { enabled: true } }
mutators: { header: { enabled: true, config: { headers: { x-user-id: "{{ print .Subject }}" } } } }
clusters: { "http://kratos-public.auth": kratos }
"#;

fn headers(method: &str, url: &str, extra: &[(&str, &str)]) -> Vec<(String, Vec<u8>)> {
    let (host, path) = url
        .strip_prefix("http://")
        .and_then(|r| r.split_once('/').map(|(h, p)| (h, format!("/{p}"))))
        .expect("http://host/path");
    let mut h = vec![
        (":method".to_string(), method.as_bytes().to_vec()),
        (":scheme".to_string(), b"http".to_vec()),
        (":authority".to_string(), host.as_bytes().to_vec()),
        (":path".to_string(), path.into_bytes()),
    ];
    h.extend(
        extra
            .iter()
            .map(|(k, v)| (k.to_string(), v.as_bytes().to_vec())),
    );
    h
}

/// Callouts made by HTTP contexts (not JWKS fetches).
fn calls(vm: &Vm) -> Vec<u32> {
    vm.dispatched
        .borrow()
        .iter()
        .filter(|(ctx, _, _)| *ctx != ROOT)
        .map(|(_, t, _)| *t)
        .collect()
}

fn session(id: &str) -> Vec<u8> {
    serde_json::json!({"identity": {"id": id, "traits": {"email": format!("{id}@example.com")}}})
        .to_string()
        .into_bytes()
}

/// Sends request `id`; if it made a new callout, answers it with a session for `subject`.
/// Returns whether it called and who went upstream.
fn through(vm: &Vm, id: u32, req: Vec<(String, Vec<u8>)>, subject: &str) -> (bool, Option<String>) {
    let before = calls(vm).len();
    vm.send(id, req);
    let after = calls(vm);
    let called = after.len() > before;
    if called {
        vm.answer(*after.last().unwrap(), ok(session(subject)));
    }
    (called, forwarded_user(vm, id))
}

/// A is cached; B (differing in one input) must call again; A again must not.
fn never_shared(name: &str, a: Vec<(String, Vec<u8>)>, b: Vec<(String, Vec<u8>)>) {
    let vm = Vm::configured(SESSIONS.as_bytes(), Rc::default(), NOW);
    let (called, user) = through(&vm, 1, a.clone(), "alice");
    assert!(called, "{name}: A calls the store");
    assert!(user.is_some(), "{name}: A is forwarded");
    let (called, user) = through(&vm, 2, b, "bob");
    assert!(called, "{name}: B must not be answered from A's entry");
    assert!(
        user.is_some_and(|u| !u.contains("alice")),
        "{name}: B is not alice"
    );
    let (called, user) = through(&vm, 3, a, "mallory");
    assert!(!called, "{name}: A again is a cache hit (the cache is on)");
    assert!(
        user.is_some_and(|u| u.contains("alice")),
        "{name}: A's entry is A's"
    );
}

const KRATOS: (&str, &str) = ("cookie", "ory_kratos_session=s1");

#[test]
fn session_cache_key_covers_the_session_cookie() {
    never_shared(
        "cookie value",
        headers("GET", "http://cookie.example.com/a", &[KRATOS]),
        headers(
            "GET",
            "http://cookie.example.com/a",
            &[("cookie", "ory_kratos_session=s2")],
        ),
    );
}

#[test]
fn session_cache_key_covers_cookies_outside_only_because_the_store_sees_them() {
    never_shared(
        "other cookie",
        headers(
            "GET",
            "http://cookie.example.com/a",
            &[("cookie", "ory_kratos_session=s1; csrf=1")],
        ),
        headers(
            "GET",
            "http://cookie.example.com/a",
            &[("cookie", "ory_kratos_session=s1; csrf=2")],
        ),
    );
}

#[test]
fn session_cache_key_covers_a_cookie_split_across_headers() {
    never_shared(
        "split cookie",
        headers(
            "GET",
            "http://cookie.example.com/a",
            &[("cookie", "a=1"), KRATOS],
        ),
        headers(
            "GET",
            "http://cookie.example.com/a",
            &[
                ("cookie", "a=1; ory_kratos_session=s1"),
                ("cookie", "ory_kratos_session=s2"),
            ],
        ),
    );
}

#[test]
fn session_cache_key_covers_forwarded_headers() {
    never_shared(
        "x-tenant",
        headers(
            "GET",
            "http://cookie.example.com/a",
            &[KRATOS, ("x-tenant", "acme")],
        ),
        headers(
            "GET",
            "http://cookie.example.com/a",
            &[KRATOS, ("x-tenant", "evil")],
        ),
    );
}

#[test]
fn session_cache_key_covers_the_method_unless_forced() {
    never_shared(
        "method",
        headers("GET", "http://cookie.example.com/a", &[KRATOS]),
        headers("POST", "http://cookie.example.com/a", &[KRATOS]),
    );
    // With force_method the store sees GET for both: one entry is right.
    let vm = Vm::configured(SESSIONS.as_bytes(), Rc::default(), NOW);
    assert!(
        through(
            &vm,
            1,
            headers("GET", "http://forced.example.com/a", &[KRATOS]),
            "alice"
        )
        .0
    );
    assert!(
        !through(
            &vm,
            2,
            headers("POST", "http://forced.example.com/a", &[KRATOS]),
            "bob"
        )
        .0
    );
}

#[test]
fn session_cache_key_covers_path_and_query_when_they_are_sent() {
    never_shared(
        "path",
        headers("GET", "http://path.example.com/a", &[KRATOS]),
        headers("GET", "http://path.example.com/b", &[KRATOS]),
    );
    never_shared(
        "query",
        headers("GET", "http://path.example.com/a?x=1", &[KRATOS]),
        headers("GET", "http://path.example.com/a?x=2", &[KRATOS]),
    );
}

#[test]
fn session_cache_key_covers_the_check_url_and_the_subject_path() {
    never_shared(
        "check_session_url",
        headers("GET", "http://cookie.example.com/a", &[KRATOS]),
        headers("GET", "http://store.example.com/a", &[KRATOS]),
    );
    never_shared(
        "subject_from",
        headers("GET", "http://cookie.example.com/a", &[KRATOS]),
        headers("GET", "http://subject.example.com/a", &[KRATOS]),
    );
}

#[test]
fn session_cache_key_covers_bearer_tokens_wherever_they_come_from() {
    never_shared(
        "authorization",
        headers(
            "GET",
            "http://bearer.example.com/a",
            &[("authorization", "Bearer t1")],
        ),
        headers(
            "GET",
            "http://bearer.example.com/a",
            &[("authorization", "Bearer t2")],
        ),
    );
    never_shared(
        "query token",
        headers("GET", "http://query.example.com/a?token=t1", &[]),
        headers("GET", "http://query.example.com/a?token=t2", &[]),
    );
}

#[test]
fn shared_data_layer_keeps_other_workers_sessions_apart() {
    let store: Rc<Store> = Rc::default();
    let a = Vm::configured(SESSIONS.as_bytes(), Rc::clone(&store), NOW);
    let b = Vm::configured(SESSIONS.as_bytes(), Rc::clone(&store), NOW);
    let req = |cookie: &str| headers("GET", "http://cookie.example.com/a", &[("cookie", cookie)]);
    assert!(through(&a, 1, req("ory_kratos_session=s1"), "alice").0);
    let (called, user) = through(&b, 1, req("ory_kratos_session=s2"), "bob");
    assert!(called, "another session on another worker calls the store");
    assert_eq!(user.as_deref(), Some("bob"));
    let (called, user) = through(&b, 2, req("ory_kratos_session=s1"), "mallory");
    assert!(
        !called,
        "the same session on another worker is a shared hit"
    );
    assert_eq!(user.as_deref(), Some("alice"));
}

// --- the verified-JWT cache ---

const JWT: &str = r#"
access_rules:
  rules:
    - id: a
      match: { url: "http://a.example.com/<.*>", methods: [GET] }
      authenticators: [{ handler: jwt, config: { jwks_urls: ["http://idp-a.auth/keys"] } }]
      authorizer: { handler: allow }
      mutators: [{ handler: header }]
    - id: b
      match: { url: "http://b.example.com/<.*>", methods: [GET] }
      authenticators: [{ handler: jwt, config: { jwks_urls: ["http://idp-b.auth/keys"] } }]
      authorizer: { handler: allow }
      mutators: [{ handler: header }]
authenticators: { jwt: { enabled: true, config: { jwks_ttl: 30s, jwks_max_wait: 1s } } }
authorizers: { allow: { enabled: true } }
mutators: { header: { enabled: true, config: { headers: { x-user-id: "{{ print .Subject }}" } } } }
clusters: { "http://idp-a.auth": idp-a, "http://idp-b.auth": idp-b }
"#;

fn keys(file: &str) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(scenario::root().join("tests/keys").join(file)).unwrap())
        .unwrap()
}

/// A set holding only the key `from` of jwks.json, published under the id `kid`.
fn one_key(from: &str, kid: &str) -> Vec<u8> {
    let mut key = keys("jwks.json")["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == from)
        .unwrap()
        .clone();
    key["kid"] = kid.into();
    serde_json::json!({ "keys": [key] })
        .to_string()
        .into_bytes()
}

/// Ticks and answers each pending JWKS fetch by its cluster.
fn serve_keys(vm: &Vm, a: &[u8], b: &[u8]) {
    vm.tick();
    let fetches: Vec<(u32, String)> = vm
        .dispatched
        .borrow()
        .iter()
        .filter(|(ctx, _, _)| *ctx == ROOT)
        .map(|(_, t, c)| (*t, c.cluster.clone()))
        .collect();
    for (token, cluster) in fetches {
        vm.answer(token, ok(if cluster == "idp-a" { a } else { b }.to_vec()));
    }
    vm.dispatched
        .borrow_mut()
        .retain(|(ctx, _, _)| *ctx != ROOT);
}

fn jwt(sub: &str) -> String {
    let claims = serde_json::json!({"sub": sub, "exp": NOW / 1000 + 3600});
    mint(&JwtSpec {
        alg: "RS256".into(),
        key: Some("rsa-1".into()),
        kid: Some("rsa-1".into()),
        claims: claims.as_object().unwrap().clone(),
        tamper: false,
    })
}

fn bearer(host: &str, token: &str) -> Vec<(String, Vec<u8>)> {
    headers(
        "GET",
        &format!("http://{host}/x"),
        &[("authorization", &format!("Bearer {token}"))],
    )
}

fn status(vm: &Vm, id: u32) -> Option<u32> {
    match vm.ending(id) {
        Ending::Reply { status, .. } => Some(status),
        _ => None,
    }
}

#[test]
fn jwt_cache_same_signature_other_payload_is_refused() {
    let vm = Vm::configured(JWT.as_bytes(), Rc::default(), NOW);
    let a = one_key("rsa-1", "rsa-1");
    serve_keys(&vm, &a, &a);
    let token = jwt("alice");
    vm.send(1, bearer("a.example.com", &token));
    assert_eq!(forwarded_user(&vm, 1).as_deref(), Some("alice"));
    let mut parts: Vec<String> = token.split('.').map(str::to_string).collect();
    parts[1] = URL_SAFE_NO_PAD
        .encode(serde_json::json!({"sub": "admin", "exp": NOW / 1000 + 3600}).to_string());
    vm.send(2, bearer("a.example.com", &parts.join(".")));
    assert_eq!(
        status(&vm, 2),
        Some(401),
        "alice's signature does not cover admin's payload"
    );
    vm.send(3, bearer("a.example.com", &token));
    assert_eq!(forwarded_user(&vm, 3).as_deref(), Some("alice"));
}

#[test]
fn jwt_cache_entry_counts_only_for_rules_trusting_the_same_jwks() {
    let vm = Vm::configured(JWT.as_bytes(), Rc::default(), NOW);
    // idp-b publishes another key under the same kid: a token signed for idp-a is not idp-b's.
    serve_keys(&vm, &one_key("rsa-1", "rsa-1"), &one_key("rsa-2", "rsa-1"));
    let token = jwt("alice");
    vm.send(1, bearer("a.example.com", &token));
    assert_eq!(forwarded_user(&vm, 1).as_deref(), Some("alice"));
    vm.send(2, bearer("b.example.com", &token));
    assert_eq!(status(&vm, 2), Some(401), "verified under idp-a, not idp-b");
}

#[test]
fn jwt_cache_entry_dies_when_its_kid_is_republished_with_other_material() {
    let vm = Vm::configured(JWT.as_bytes(), Rc::default(), NOW);
    let a = one_key("rsa-1", "rsa-1");
    serve_keys(&vm, &a, &a);
    let token = jwt("alice");
    vm.send(1, bearer("a.example.com", &token));
    assert_eq!(forwarded_user(&vm, 1).as_deref(), Some("alice"));
    // jwks_ttl later the IdP serves rsa-2's material under the kid rsa-1.
    *vm.now_ms.borrow_mut() = NOW + 31_000;
    let rotated = one_key("rsa-2", "rsa-1");
    serve_keys(&vm, &rotated, &rotated);
    vm.send(2, bearer("a.example.com", &token));
    assert_eq!(
        status(&vm, 2),
        Some(401),
        "the key that verified the cached token is no longer published"
    );
}

// --- the hydrator cache ---

const HYDRATOR: &str = r#"
access_rules:
  rules:
    - id: one
      match: { url: "http://one.example.com/<.*>", methods: [GET] }
      authenticators: [{ handler: anonymous }]
      authorizer: { handler: allow }
      mutators: [{ handler: hydrator, config: { api: { url: "http://hydrate.auth/h", auth: { basic: { username: one, password: p } } } } }, { handler: header }]
    - id: two
      match: { url: "http://two.example.com/<.*>", methods: [GET] }
      authenticators: [{ handler: anonymous }]
      authorizer: { handler: allow }
      mutators:
        - { handler: hydrator, config: { api: { url: "http://hydrate.auth/h", auth: { basic: { username: one, password: p } } } } }
        - { handler: hydrator, config: { api: { url: "http://hydrate.auth/h", auth: { basic: { username: two, password: p } } } } }
        - { handler: header }
authenticators: { anonymous: { enabled: true, config: { subject: guest } } }
authorizers: { allow: { enabled: true } }
mutators:
  hydrator: { enabled: true, config: { api: { url: "http://hydrate.auth/h" }, cache: { enabled: true, ttl: 60s } } }
  header: { enabled: true, config: { headers: { x-user-id: "{{ print .Subject }}", x-tier: "{{ print .Extra.tier }}" } } }
clusters: { "http://hydrate.auth": hydrate }
"#;

fn hydrated(vm: &Vm, id: u32, path: &str, tier: &str) -> (bool, Option<String>) {
    let before = calls(vm).len();
    vm.send(
        id,
        headers("GET", &format!("http://one.example.com{path}"), &[]),
    );
    let after = calls(vm);
    let called = after.len() > before;
    if called {
        let body = serde_json::json!({"subject": "guest", "extra": {"tier": tier}});
        vm.answer(*after.last().unwrap(), ok(body.to_string().into_bytes()));
    }
    let tier = match vm.ending(id) {
        Ending::Forward(h) => h
            .iter()
            .find(|(k, _)| k == "x-tier")
            .map(|(_, v)| String::from_utf8_lossy(v).into_owned()),
        _ => None,
    };
    (called, tier)
}

#[test]
fn hydrator_cache_key_covers_the_session_sent() {
    let vm = Vm::configured(HYDRATOR.as_bytes(), Rc::default(), NOW);
    assert_eq!(hydrated(&vm, 1, "/a", "gold"), (true, Some("gold".into())));
    assert_eq!(
        hydrated(&vm, 2, "/a", "x"),
        (false, Some("gold".into())),
        "cache on"
    );
    assert_eq!(hydrated(&vm, 3, "/b", "free"), (true, Some("free".into())));
}

#[test]
fn hydrator_cache_key_covers_the_api_credentials() {
    // Rule `two` runs two hydrators on one URL with other credentials. The first answers the
    // session unchanged, so the second sends the very same body: only the credentials differ,
    // and the second API call must still be made.
    let vm = Vm::configured(HYDRATOR.as_bytes(), Rc::default(), NOW);
    vm.send(1, headers("GET", "http://two.example.com/a", &[]));
    let first = calls(&vm);
    assert_eq!(first.len(), 1);
    vm.answer(first[0], ok(br#"{"subject":"guest","extra":{}}"#.to_vec()));
    let second = calls(&vm);
    assert_eq!(
        second.len(),
        2,
        "the second hydrator asked with its own credentials"
    );
    let (body, auth): (Vec<_>, Vec<_>) = vm
        .dispatched
        .borrow()
        .iter()
        .map(|(_, _, c)| {
            let auth = c
                .headers
                .iter()
                .find(|(k, _)| k == "authorization")
                .map(|(_, v)| v.clone());
            (c.body.clone(), auth)
        })
        .unzip();
    assert_eq!(body[0], body[1], "the same session was sent twice");
    assert_ne!(auth[0], auth[1]);
    vm.answer(
        second[1],
        ok(br#"{"subject":"guest","extra":{"tier":"two"}}"#.to_vec()),
    );
    assert!(matches!(vm.ending(1), Ending::Forward(_)));
}

// --- remote_json: no cache at all ---

#[test]
fn remote_json_does_not_cache_so_every_request_asks() {
    let config = r#"
access_rules:
  rules:
    - id: r
      match: { url: "http://r.example.com/<.*>", methods: [GET] }
      authenticators: [{ handler: anonymous }]
      authorizer: { handler: remote_json, config: { remote: "http://keto.auth/check", payload: "{}" } }
      mutators: [{ handler: noop }]
authenticators: { anonymous: { enabled: true } }
authorizers: { remote_json: { enabled: true } }
mutators: { noop: { enabled: true } }
clusters: { "http://keto.auth": keto }
"#;
    let vm = Vm::configured(config.as_bytes(), Rc::default(), NOW);
    for id in 1..=2 {
        vm.send(id, headers("GET", "http://r.example.com/a", &[]));
        let c = calls(&vm);
        assert_eq!(c.len(), id as usize, "request {id} asks the authorizer");
        vm.answer(*c.last().unwrap(), ok(b"{}".to_vec()));
        assert!(matches!(vm.ending(id), Ending::Forward(_)));
    }
}
