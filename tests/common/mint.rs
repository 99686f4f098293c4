//! Test tokens: JWTs for every algorithm, signed with the committed test keys in `tests/keys`
//! (which protect nothing), with exactly the claims a case writes (no time claims are added).

use jwt_simple::prelude::*;
use serde::Deserialize;
use std::path::PathBuf;

/// A token as a scenario writes it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JwtSpec {
    pub alg: String,
    /// The test key (file stem in `tests/keys`); by default the first key of the family.
    #[serde(default)]
    pub key: Option<String>,
    /// The header `kid`; by default the key's name. `""` leaves it out.
    #[serde(default)]
    pub kid: Option<String>,
    #[serde(default)]
    pub claims: serde_json::Map<String, serde_json::Value>,
    /// Flip one signature byte.
    #[serde(default)]
    pub tamper: bool,
}

fn keys_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .map(|p| p.join("tests/keys"))
        .find(|p| p.is_dir())
        .expect("tests/keys")
}

pub fn default_key(alg: &str) -> &'static str {
    match alg {
        a if a.starts_with("RS") || a.starts_with("PS") => "rsa-1",
        "ES256" => "ec256-1",
        "ES384" => "ec384-1",
        "EdDSA" => "ed25519-1",
        a if a.starts_with("HS") => "hmac-1",
        other => panic!("no test key for {other}"),
    }
}

pub fn mint(spec: &JwtSpec) -> String {
    let key = spec
        .key
        .clone()
        .unwrap_or_else(|| default_key(&spec.alg).to_string());
    let kid = spec.kid.clone().unwrap_or_else(|| key.clone());
    let claims = JWTClaims {
        issued_at: None,
        expires_at: None,
        invalid_before: None,
        audiences: None,
        issuer: None,
        jwt_id: None,
        subject: None,
        nonce: None,
        custom: spec.claims.clone(),
    };
    let read =
        |ext: &str| std::fs::read(keys_dir().join(format!("{key}.{ext}"))).expect("test key");
    let pem = || String::from_utf8(read("pem")).expect("pem");
    macro_rules! sign {
        ($pair:ty) => {{
            let mut k = <$pair>::from_pem(&pem()).expect("test key pem");
            if !kid.is_empty() {
                k = k.with_key_id(&kid);
            }
            k.sign(claims).expect("sign")
        }};
    }
    macro_rules! mac {
        ($key:ty) => {{
            let mut k = <$key>::from_bytes(&read("secret"));
            if !kid.is_empty() {
                k = k.with_key_id(&kid);
            }
            k.authenticate(claims).expect("mac")
        }};
    }
    let token = match spec.alg.as_str() {
        "RS256" => sign!(RS256KeyPair),
        "RS384" => sign!(RS384KeyPair),
        "RS512" => sign!(RS512KeyPair),
        "PS256" => sign!(PS256KeyPair),
        "PS384" => sign!(PS384KeyPair),
        "PS512" => sign!(PS512KeyPair),
        "ES256" => sign!(ES256KeyPair),
        "ES384" => sign!(ES384KeyPair),
        "EdDSA" => sign!(Ed25519KeyPair),
        "HS256" => mac!(HS256Key),
        "HS384" => mac!(HS384Key),
        "HS512" => mac!(HS512Key),
        other => panic!("cannot mint {other}"),
    };
    if spec.tamper {
        let (head, sig) = token.rsplit_once('.').expect("three parts");
        let mut sig: Vec<u8> = sig.bytes().collect();
        sig[2] = if sig[2] == b'A' { b'B' } else { b'A' };
        format!("{head}.{}", String::from_utf8(sig).expect("ascii"))
    } else {
        token
    }
}
