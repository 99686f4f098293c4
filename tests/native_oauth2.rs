//! oauth2_introspection and oauth2_client_credentials across requests: what their caches keep,
//! for how long, and what keeps two callers apart.

mod common;

use common::world::{forwarded_user, ok, Vm, NOW};
use portcullis::vocab::callout::Callout;
use serde_json::json;
use std::rc::Rc;

const CONFIG: &str = r#"
access_rules:
  rules:
    - id: introspected
      match: { url: "http://api.example.com/<.*>", methods: [GET] }
      authenticators: [{ handler: oauth2_introspection }]
      authorizer: { handler: allow }
      mutators: [{ handler: header }]
    - id: pre-authorized
      match: { url: "http://pre.example.com/<.*>", methods: [GET] }
      authenticators:
        - handler: oauth2_introspection
          config:
            cache: { enabled: false }
            pre_authorization:
              enabled: true
              client_id: portcullis
              client_secret: pc-secret
              token_url: https://idp.example.com/oauth2/token
      authorizer: { handler: allow }
      mutators: [{ handler: header }]
    - id: clients
      match: { url: "http://cc.example.com/<.*>", methods: [GET] }
      authenticators: [{ handler: oauth2_client_credentials }]
      authorizer: { handler: allow }
      mutators: [{ handler: header }]
authenticators:
  oauth2_introspection:
    enabled: true
    config:
      introspection_url: https://idp.example.com/oauth2/introspect
      scope_strategy: exact
      required_scope: [read]
      cache: { enabled: true, ttl: 5m }
  oauth2_client_credentials:
    enabled: true
    config:
      token_url: https://idp.example.com/oauth2/token
      cache: { enabled: true, ttl: 10m }
authorizers: { allow: { enabled: true } }
mutators:
  header: { enabled: true, config: { headers: { x-user-id: "{{ print .Subject }}" } } }
clusters: { "https://idp.example.com": idp }
"#;

fn request(host: &str, authorization: &str) -> Vec<(String, Vec<u8>)> {
    vec![
        (":method".into(), b"GET".to_vec()),
        (":scheme".into(), b"http".to_vec()),
        (":authority".into(), host.as_bytes().to_vec()),
        (":path".into(), b"/x".to_vec()),
        ("authorization".into(), authorization.as_bytes().to_vec()),
    ]
}

fn vm() -> Vm {
    Vm::configured(CONFIG.as_bytes(), Rc::default(), NOW)
}

fn calls(vm: &Vm) -> Vec<Callout> {
    vm.dispatched
        .borrow()
        .iter()
        .map(|(_, _, c)| c.clone())
        .collect()
}

fn last_token(vm: &Vm) -> u32 {
    vm.dispatched
        .borrow()
        .last()
        .map(|(_, t, _)| *t)
        .expect("a call")
}

fn active(sub: &str, exp_s: u64) -> Vec<u8> {
    json!({"active": true, "sub": sub, "scope": "read", "exp": exp_s})
        .to_string()
        .into_bytes()
}

#[test]
fn an_introspection_answer_is_reused_until_the_token_expires() {
    let vm = vm();
    vm.send(1, request("api.example.com", "Bearer t-1"));
    vm.answer(last_token(&vm), ok(active("u1", NOW / 1000 + 60)));
    assert_eq!(forwarded_user(&vm, 1).as_deref(), Some("u1"));
    vm.send(2, request("api.example.com", "Bearer t-1"));
    assert_eq!(forwarded_user(&vm, 2).as_deref(), Some("u1"));
    assert_eq!(calls(&vm).len(), 1, "the second request was a cache hit");
    // The cache's ttl is 5 minutes, but the token's own exp (60 s) ends the entry first: a
    // hit is as good as Oathkeeper's re-check of exp on every hit.
    *vm.now_ms.borrow_mut() = NOW + 60_001;
    vm.send(3, request("api.example.com", "Bearer t-1"));
    assert_eq!(
        calls(&vm).len(),
        2,
        "after exp the token is introspected again"
    );
}

#[test]
fn a_refusal_is_not_cached_and_tokens_never_share_an_entry() {
    let vm = vm();
    vm.send(1, request("api.example.com", "Bearer t-1"));
    vm.answer(last_token(&vm), ok(br#"{"active":false}"#.to_vec()));
    vm.send(2, request("api.example.com", "Bearer t-1"));
    assert_eq!(calls(&vm).len(), 2, "an inactive answer is asked again");
    vm.answer(last_token(&vm), ok(active("u1", NOW / 1000 + 600)));
    vm.send(3, request("api.example.com", "Bearer t-2"));
    assert_eq!(calls(&vm).len(), 3, "another token is another entry");
}

#[test]
fn the_pre_authorization_grant_is_reused_for_later_introspections() {
    let vm = vm();
    vm.send(1, request("pre.example.com", "Bearer a"));
    assert_eq!(calls(&vm)[0].headers[1].1, "/oauth2/token");
    vm.answer(
        last_token(&vm),
        ok(br#"{"access_token":"pc-1","expires_in":60}"#.to_vec()),
    );
    vm.answer(last_token(&vm), ok(active("ua", NOW / 1000 + 600)));
    vm.send(2, request("pre.example.com", "Bearer b"));
    let c = calls(&vm);
    assert_eq!(c.len(), 3, "one grant, two introspections");
    assert!(c[2]
        .headers
        .contains(&("authorization".into(), "Bearer pc-1".into())));
    // Go's oauth2 stops using a token 10 s before it expires.
    *vm.now_ms.borrow_mut() = NOW + 50_001;
    vm.send(3, request("pre.example.com", "Bearer c"));
    assert_eq!(calls(&vm)[3].headers[1].1, "/oauth2/token");
}

#[test]
fn client_credentials_are_cached_per_secret() {
    let vm = vm();
    let basic = |pair: &str| {
        use base64::Engine;
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(pair)
        )
    };
    vm.send(1, request("cc.example.com", &basic("c1:right")));
    vm.answer(
        last_token(&vm),
        ok(br#"{"access_token":"x","expires_in":3600}"#.to_vec()),
    );
    assert_eq!(forwarded_user(&vm, 1).as_deref(), Some("c1"));
    vm.send(2, request("cc.example.com", &basic("c1:right")));
    assert_eq!(forwarded_user(&vm, 2).as_deref(), Some("c1"));
    assert_eq!(calls(&vm).len(), 1);
    vm.send(3, request("cc.example.com", &basic("c1:wrong")));
    assert_eq!(calls(&vm).len(), 2, "a different secret must be checked");
    // The entry lives for the shorter of the ttl (600 s) and the token's life (3590 s).
    *vm.now_ms.borrow_mut() = NOW + 600_001;
    vm.send(4, request("cc.example.com", &basic("c1:right")));
    assert_eq!(calls(&vm).len(), 3);
}
