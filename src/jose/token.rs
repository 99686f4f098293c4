//! Compact JWTs: splitting and decoding the header and claims without trusting them, and the
//! signature check, which is the only step that costs real time.

use super::crypto::{Crypto, Verdict};
use super::jwk::Jwk;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jwt_simple::prelude::*;
use jwt_simple::JWTError;
use serde_json::{Map, Value};
use std::fmt;

/// Tokens longer than this are refused before decoding (Envoy's default header limit is 60 KiB).
pub const MAX_TOKEN_BYTES: usize = 16 * 1024;

/// A token whose header and claims have been decoded but not verified.
#[derive(Debug, Clone)]
pub struct Parsed {
    pub alg: String,
    pub kid: Option<String>,
    /// A non-empty `crit`: extensions nobody here understands, so the token is refused.
    crit: bool,
    /// A `salt` that is not base64url, which jwt-simple refuses.
    bad_salt: bool,
    pub claims: Map<String, Value>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenError {
    /// Not three dot-separated parts: some other kind of token, so not ours to judge.
    NotAJwt,
    TooLong,
    /// A part is not base64url JSON of the expected shape.
    Malformed(&'static str),
    MissingKid,
    /// The key named by `kid` cannot verify this algorithm.
    KeyMismatch,
    BadSignature,
    /// The verifier refused the token for another reason (its own message).
    Unverifiable(String),
}

impl fmt::Display for TokenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TokenError::NotAJwt => f.write_str("the token is not a JWT"),
            TokenError::TooLong => write!(f, "the token is longer than {MAX_TOKEN_BYTES} bytes"),
            TokenError::Malformed(part) => write!(f, "the token {part} is malformed"),
            TokenError::MissingKid => f.write_str("the token header has no kid"),
            TokenError::KeyMismatch => {
                f.write_str("The signing key algorithm does not match the algorithm of the token")
            }
            TokenError::BadSignature => f.write_str("the token signature is invalid"),
            TokenError::Unverifiable(m) => write!(f, "the token could not be verified: {m}"),
        }
    }
}

impl std::error::Error for TokenError {}

#[derive(Deserialize)]
struct Header {
    alg: String,
    kid: Option<String>,
    crit: Option<Vec<String>>,
    salt: Option<String>,
    // Read so that a header jwt-simple refuses is refused here too, whatever the backend.
    #[serde(rename = "typ")]
    _typ: Option<String>,
    #[serde(rename = "cty")]
    _cty: Option<String>,
    #[serde(rename = "x5c")]
    _x5c: Option<Vec<String>>,
    #[serde(rename = "jku")]
    _jku: Option<String>,
    #[serde(rename = "jwk")]
    _jwk: Option<String>,
    #[serde(rename = "x5u")]
    _x5u: Option<String>,
    #[serde(rename = "x5t")]
    _x5t: Option<String>,
    #[serde(rename = "x5t#S256")]
    _x5t_s256: Option<String>,
}

fn decode<T: serde::de::DeserializeOwned>(part: &str, what: &'static str) -> Result<T, TokenError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| TokenError::Malformed(what))?;
    serde_json::from_slice(&bytes).map_err(|_| TokenError::Malformed(what))
}

impl Parsed {
    pub fn parse(token: &str) -> Result<Parsed, TokenError> {
        let mut parts = token.split('.');
        let (Some(header), Some(claims), Some(_), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(TokenError::NotAJwt);
        };
        if token.len() > MAX_TOKEN_BYTES {
            return Err(TokenError::TooLong);
        }
        let header: Header = decode(header, "header")?;
        let claims: Map<String, Value> = decode(claims, "claims")?;
        Ok(Parsed {
            alg: header.alg,
            kid: header.kid,
            crit: header.crit.is_some_and(|c| !c.is_empty()),
            bad_salt: header
                .salt
                .is_some_and(|s| Base64UrlSafeNoPadding::decode_to_vec(s, None).is_err()),
            claims,
        })
    }

    /// Checks the signature of `token` (the text this was parsed from) with `key`, through
    /// `crypto`. The claims have been checked already, at `now_s`; the checks jwt-simple adds
    /// around the signature (header size, `crit`, claim types and its time claims, with the
    /// same clock and leeway) run here, the same for every backend.
    pub fn verify(
        &self,
        token: &str,
        key: &Jwk,
        now_s: u64,
        leeway_s: u64,
        crypto: &dyn Crypto,
    ) -> Result<(), TokenError> {
        if !key.fits(&self.alg) {
            return Err(TokenError::KeyMismatch);
        }
        let Some((signing_input, signature)) = token.rsplit_once('.') else {
            return Err(TokenError::NotAJwt);
        };
        let header = signing_input.split('.').next().unwrap_or_default();
        if header.len() > MAX_HEADER_LENGTH {
            return Err(unverifiable(JWTError::HeaderTooLarge));
        }
        if self.crit {
            return Err(unverifiable(JWTError::UnknownCriticalExtension));
        }
        if self.bad_salt {
            return Err(TokenError::Unverifiable("invalid salt".into()));
        }
        let signature = Base64UrlSafeNoPadding::decode_to_vec(signature, None)
            .map_err(|e| TokenError::Unverifiable(e.to_string()))?;
        match crypto.verify(&self.alg, key, signing_input, &signature) {
            Verdict::Valid => {}
            Verdict::Invalid => return Err(TokenError::BadSignature),
            Verdict::Error(e) => return Err(TokenError::Unverifiable(e)),
        }
        // From bytes, as jwt-simple reads them (one deserializer in the module, not two).
        let malformed = |e: serde_json::Error| TokenError::Unverifiable(e.to_string());
        let bytes = serde_json::to_vec(&self.claims).map_err(malformed)?;
        let claims: JWTClaims<NoCustomClaims> =
            serde_json::from_slice(&bytes).map_err(malformed)?;
        let secs = |t: UnixTimeStamp| t.as_secs();
        if claims
            .issued_at
            .map(secs)
            .is_some_and(|iat| iat > now_s + leeway_s)
        {
            return Err(unverifiable(JWTError::ClockDrift));
        }
        if claims
            .invalid_before
            .map(secs)
            .is_some_and(|nbf| now_s + leeway_s < nbf)
        {
            return Err(unverifiable(JWTError::TokenNotValidYet));
        }
        if claims
            .expires_at
            .map(secs)
            .is_some_and(|exp| now_s < leeway_s || now_s - leeway_s > exp)
        {
            return Err(unverifiable(JWTError::TokenHasExpired));
        }
        Ok(())
    }
}

fn unverifiable(e: JWTError) -> TokenError {
    TokenError::Unverifiable(e.to_string())
}
