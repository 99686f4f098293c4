//! The `id_token` mutator: what the upstream receives, verified with the public key the filter
//! answers at its JWKS endpoint; the claims it will not let a template spoof; its token cache;
//! keys inline or fetched.

mod common;

use base64::Engine;
use common::scenario::Ending;
use common::world::{Vm, NOW};
use jwt_simple::prelude::*;
use serde_json::{json, Value};
use std::rc::Rc;

fn inline(name: &str) -> String {
    let doc = std::fs::read(
        common::scenario::root().join(format!("tests/keys/signing-{name}.jwks.json")),
    )
    .expect("signing keys");
    format!(
        "base64://{}",
        base64::engine::general_purpose::STANDARD.encode(doc)
    )
}

fn config(jwks_url: &str, extra: &str) -> String {
    format!(
        r#"
access_rules:
  rules:
    - id: echo
      match: {{ url: "http://echo.example.com/<.*>", methods: [GET] }}
      authenticators: [{{ handler: anonymous }}]
      authorizer: {{ handler: allow }}
      mutators: [{{ handler: id_token }}]
authenticators: {{ anonymous: {{ enabled: true, config: {{ subject: alice }} }} }}
authorizers: {{ allow: {{ enabled: true }} }}
mutators:
  id_token:
    enabled: true
    config:
      jwks_url: "{jwks_url}"
      issuer_url: https://portcullis.example.com/
      ttl: 100s
      claims: '{{"aud": ["orders-api"], "iss": "spoofed", "sub": "spoofed", "exp": 1, "path": {{{{ toJson .MatchContext.URL.Path }}}}}}'
clusters: {{ "http://keys.auth": keys }}
{extra}
"#
    )
}

fn get(vm: &Vm, id: u32, path: &str) -> Ending {
    vm.send(
        id,
        vec![
            (":method".into(), b"GET".to_vec()),
            (":scheme".into(), b"http".to_vec()),
            (":authority".into(), b"echo.example.com".to_vec()),
            (":path".into(), path.as_bytes().to_vec()),
        ],
    );
    vm.ending(id)
}

fn bearer(ending: &Ending) -> String {
    let Ending::Forward(h) = ending else {
        panic!("not forwarded: {ending:?}")
    };
    let value = h
        .iter()
        .find(|(k, _)| k == "authorization")
        .map(|(_, v)| String::from_utf8(v.clone()).unwrap())
        .expect("authorization");
    value.strip_prefix("Bearer ").expect("bearer").to_string()
}

fn published(vm: &Vm, id: u32) -> Value {
    match get(vm, id, "/.well-known/jwks.json") {
        Ending::Reply {
            status: 200, body, ..
        } => serde_json::from_slice(&body).unwrap(),
        other => panic!("the JWKS endpoint answered {other:?}"),
    }
}

fn claims(token: &str) -> Value {
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap()
}

#[test]
fn the_upstream_gets_a_token_it_can_verify_with_the_published_key() {
    let vm = Vm::configured(config(&inline("es256"), "").as_bytes(), Rc::default(), NOW);
    let token = bearer(&get(&vm, 1, "/a/b"));
    let jwks = published(&vm, 2);
    let keys = jwks["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1);
    assert!(
        keys[0].get("d").is_none(),
        "the private part is never published"
    );
    let public = ES256PublicKey::from_jwk(&keys[0].to_string()).unwrap();
    let options = VerificationOptions {
        artificial_time: Some(UnixTimeStamp::from_secs(NOW / 1000)),
        ..Default::default()
    };
    public
        .verify_token::<Value>(&token, Some(options))
        .expect("the signature verifies");
    let c = claims(&token);
    assert_eq!(
        c["iss"], "https://portcullis.example.com/",
        "iss cannot be spoofed"
    );
    assert_eq!(c["sub"], "alice", "sub cannot be spoofed");
    assert_eq!(c["aud"], json!(["orders-api"]), "aud comes from the claims");
    assert_eq!(c["path"], "/a/b");
    assert_eq!(c["iat"], NOW / 1000);
    assert_eq!(c["nbf"], NOW / 1000);
    assert_eq!(c["exp"], NOW / 1000 + 100, "exp is ours: now + ttl");
    assert_eq!(c["jti"].as_str().unwrap().len(), 36);
    let header: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(token.split('.').next().unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(header["alg"], "ES256");
    assert_eq!(header["kid"], "ec256-1");
}

#[test]
fn a_token_is_reused_until_less_than_a_tenth_of_its_ttl_remains() {
    let vm = Vm::configured(config(&inline("eddsa"), "").as_bytes(), Rc::default(), NOW);
    let first = bearer(&get(&vm, 1, "/a"));
    assert_eq!(bearer(&get(&vm, 2, "/a")), first);
    assert_ne!(
        bearer(&get(&vm, 3, "/other")),
        first,
        "other claims, another token"
    );
    *vm.now_ms.borrow_mut() = NOW + 89_999;
    assert_eq!(bearer(&get(&vm, 4, "/a")), first);
    *vm.now_ms.borrow_mut() = NOW + 90_000;
    let renewed = bearer(&get(&vm, 5, "/a"));
    assert_ne!(renewed, first);
    assert_eq!(claims(&renewed)["iat"], NOW / 1000 + 90);
}

#[test]
fn rsa_keys_sign_too() {
    let vm = Vm::configured(config(&inline("rs256"), "").as_bytes(), Rc::default(), NOW);
    let token = bearer(&get(&vm, 1, "/a"));
    let jwks = published(&vm, 2);
    let public = RS256PublicKey::from_jwk(&jwks["keys"][0].to_string()).unwrap();
    let options = VerificationOptions {
        artificial_time: Some(UnixTimeStamp::from_secs(NOW / 1000)),
        ..Default::default()
    };
    public.verify_token::<Value>(&token, Some(options)).unwrap();
}

#[test]
fn fetched_keys_sign_once_they_are_in_and_until_then_it_is_a_503() {
    let vm = Vm::configured(
        config("http://keys.auth/private.json", "").as_bytes(),
        Rc::default(),
        NOW,
    );
    match get(&vm, 1, "/a") {
        Ending::Reply { status, .. } => assert_eq!(status, 503),
        other => panic!("{other:?}"),
    }
    vm.warm(
        &std::fs::read(common::scenario::root().join("tests/keys/signing-es256.jwks.json"))
            .unwrap(),
    );
    let token = bearer(&get(&vm, 2, "/a"));
    assert_eq!(claims(&token)["sub"], "alice");
    assert_eq!(published(&vm, 3)["keys"][0]["kid"], "ec256-1");
}

#[test]
fn the_endpoint_path_is_configurable_and_can_be_turned_off() {
    let vm = Vm::configured(
        config(&inline("es256"), "jwks_endpoint: /keys").as_bytes(),
        Rc::default(),
        NOW,
    );
    assert!(matches!(
        get(&vm, 1, "/keys"),
        Ending::Reply { status: 200, .. }
    ));
    // The default path is then an ordinary request, matched by the rule.
    assert!(matches!(
        get(&vm, 2, "/.well-known/jwks.json"),
        Ending::Forward(_)
    ));
    let off = Vm::configured(
        config(&inline("es256"), "jwks_endpoint: ''").as_bytes(),
        Rc::default(),
        NOW,
    );
    assert!(matches!(
        get(&off, 1, "/.well-known/jwks.json"),
        Ending::Forward(_)
    ));
}

#[test]
fn claims_that_are_not_an_object_fail_closed() {
    let c = config(&inline("es256"), "").replace(r#"claims: '{"aud""#, r#"claims: '["aud""#);
    let c = c.replace(
        r#"{{ toJson .MatchContext.URL.Path }}}'"#,
        r#"{{ toJson .MatchContext.URL.Path }}]'"#,
    );
    let vm = Vm::configured(c.as_bytes(), Rc::default(), NOW);
    match get(&vm, 1, "/a") {
        Ending::Reply { status, .. } => assert_eq!(status, 500),
        other => panic!("{other:?}"),
    }
}

#[test]
fn keys_the_filter_cannot_read_are_refused_at_load() {
    for (url, why) in [
        ("file:///etc/keys.json", "cannot read files"),
        ("base64://bm90IGpzb24=", "not a JWKS"),
    ] {
        let err = portcullis::filter::load(config(url, "").as_bytes()).unwrap_err();
        assert!(err.to_string().contains(why), "{url}: {err}");
    }
    let public: Value = serde_json::from_slice(
        &std::fs::read(common::scenario::root().join("tests/keys/jwks.json")).unwrap(),
    )
    .unwrap();
    let public_only = json!({ "keys": [public["keys"][0], public["keys"][2]] }).to_string();
    let url = format!(
        "base64://{}",
        base64::engine::general_purpose::STANDARD.encode(public_only)
    );
    let err = portcullis::filter::load(config(&url, "").as_bytes()).unwrap_err();
    assert!(err.to_string().contains("holds no private key"), "{err}");
}
