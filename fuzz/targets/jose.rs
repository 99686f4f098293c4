//! The JOSE parsers. `jwt`: a compact token, checked as the jwt authenticator checks it against
//! the committed TEST key set; the claim checks agree on raw and normalised claims, and a token
//! that verifies stops verifying when its signature changes. `jwks`: a key-set document; every
//! key found by its `kid` has that `kid`.

use portcullis::jose::claims::{normalize_scope, Rules};
use portcullis::jose::crypto::RustCrypto;
use portcullis::jose::jwk::KeySet;
use portcullis::jose::scope::Strategy;
use portcullis::jose::signer::Signer;
use portcullis::jose::token::{Parsed, TokenError, MAX_TOKEN_BYTES};

const TEST_KEYS: &[u8] = include_bytes!("../../tests/keys/jwks.json");

fn rules() -> Rules {
    Rules {
        allowed_algorithms: vec![
            "RS256".into(),
            "ES256".into(),
            "EdDSA".into(),
            "HS256".into(),
        ],
        trusted_issuers: vec!["https://issuer.example/".into()],
        target_audience: vec!["api".into()],
        required_scope: vec!["machines.read".into()],
        scope_strategy: Strategy::Hierarchic,
        skew_ms: 60_000,
    }
}

pub fn jwt(data: &[u8]) {
    let token = String::from_utf8_lossy(data);
    let parsed = match Parsed::parse(&token) {
        Ok(p) => p,
        Err(TokenError::TooLong) => {
            assert!(token.len() > MAX_TOKEN_BYTES);
            return;
        }
        Err(TokenError::NotAJwt) => {
            assert_ne!(
                token.split('.').count(),
                3,
                "a three-part token is not a JWT?"
            );
            return;
        }
        Err(_) => return,
    };
    assert_eq!(token.split('.').count(), 3);
    let rules = rules();
    let now_ms = super::pipeline::NOW_MS;
    let raw = rules.check(&parsed.claims, now_ms);
    let mut normalised = parsed.claims.clone();
    normalize_scope(&mut normalised);
    assert_eq!(
        raw,
        rules.check(&normalised, now_ms),
        "normalising changed the verdict"
    );
    let Ok(keys) = KeySet::parse(TEST_KEYS, true) else {
        panic!("the committed test key set does not parse");
    };
    let Some(key) = parsed.kid.as_deref().and_then(|kid| keys.get(kid)) else {
        return;
    };
    let now_s = now_ms / 1000;
    if parsed.verify(&token, key, now_s, 60, &RustCrypto).is_ok() {
        let (head, sig) = token.rsplit_once('.').unwrap_or((&token, ""));
        let flipped: String = sig
            .chars()
            .map(|c| if c == 'A' { 'B' } else { 'A' })
            .collect();
        let forged = format!("{head}.{flipped}");
        assert!(
            parsed.verify(&forged, key, now_s, 60, &RustCrypto).is_err(),
            "a changed signature still verifies"
        );
    }
}

#[derive(serde::Deserialize)]
struct Listed {
    keys: Vec<serde_json::Value>,
}

pub fn jwks(data: &[u8]) {
    let _ = Signer::from_jwks(data);
    let Ok(set) = KeySet::parse(data, true) else {
        return;
    };
    // The document as the parser sees it: fields other than `keys` are skipped unread, as Go's
    // decoder skips them (invalid UTF-8 or a number out of range there does not make a key set
    // invalid).
    let Ok(doc) = serde_json::from_slice::<Listed>(data) else {
        panic!("a key set parsed from a document without a list of keys");
    };
    assert!(
        set.len() <= doc.keys.len(),
        "more keys than the document lists"
    );
    for kid in doc
        .keys
        .iter()
        .filter_map(|k| k.get("kid").and_then(|v| v.as_str()))
    {
        if let Some(key) = set.get(kid) {
            assert_eq!(key.kid, kid);
            for alg in ["RS256", "ES256", "ES384", "EdDSA", "HS256"] {
                if key.fits(alg) {
                    assert!(key.alg.as_deref().is_none_or(|a| a == alg));
                }
            }
        }
    }
}
