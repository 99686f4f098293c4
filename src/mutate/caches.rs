//! What the mutators remember between requests in one VM: hydrator answers, signed
//! `id_token`s and the signers parsed from fetched keys. Reset with each configuration.

use super::hydrator::Hydrated;
use super::id_token::Minted;
use crate::cache::digest::Digest;
use crate::cache::lru::Lru;
use crate::jose::signer::Signer;
use std::collections::HashMap;
use std::sync::Arc;

/// Hydrator answers one VM keeps.
const HYDRATION_CACHE_ENTRIES: usize = 10_000;
const HYDRATION_CACHE_BYTES: usize = 16 << 20;
/// Signed `id_token`s one VM keeps.
const ID_TOKEN_CACHE_ENTRIES: usize = 10_000;
const ID_TOKEN_CACHE_BYTES: usize = 16 << 20;

pub struct Caches {
    /// Hydrator answers by the digest of the session sent and the API URL.
    pub hydrations: Lru<Digest, Hydrated>,
    /// `id_token` tokens by the digest of what they say.
    pub id_tokens: Lru<Digest, Minted>,
    /// `id_token` signers parsed from fetched JWKS, by source, with the document's version.
    pub signers: HashMap<usize, (u64, Arc<Signer>)>,
}

impl Default for Caches {
    fn default() -> Caches {
        Caches {
            hydrations: Lru::new(HYDRATION_CACHE_ENTRIES, HYDRATION_CACHE_BYTES),
            id_tokens: Lru::new(ID_TOKEN_CACHE_ENTRIES, ID_TOKEN_CACHE_BYTES),
            signers: HashMap::new(),
        }
    }
}
