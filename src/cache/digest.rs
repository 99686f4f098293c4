//! The digest behind every cache key and shared-data key: BLAKE2b-256 over length-prefixed
//! fields, so keys are never raw credentials and no two different inputs can be made to share
//! one. BLAKE2b rather than SHA-256: about a fifth of the instructions (see benches/micro.sh).
//! Verified JWTs are keyed by the token itself instead (`authn::Caches::tokens`): a digest of
//! the whole token on every request cost more than the hash map's own hash and compare.

/// A 256-bit digest.
pub type Digest = [u8; 32];

pub struct Hasher(blake2b_simd::State);

impl Default for Hasher {
    fn default() -> Self {
        Hasher(blake2b_simd::Params::new().hash_length(32).to_state())
    }
}

impl Hasher {
    /// Adds one field; the length prefix keeps `("ab", "c")` and `("a", "bc")` apart.
    pub fn field(&mut self, bytes: &[u8]) -> &mut Self {
        self.0.update(&(bytes.len() as u64).to_le_bytes());
        self.0.update(bytes);
        self
    }

    pub fn finish(&self) -> Digest {
        let mut out = [0u8; 32];
        for (o, b) in out.iter_mut().zip(self.0.finalize().as_bytes()) {
            *o = *b;
        }
        out
    }
}

/// The digest of one field.
pub fn digest(bytes: &[u8]) -> Digest {
    Hasher::default().field(bytes).finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_delimited_and_digests_differ() {
        let a = Hasher::default().field(b"ab").field(b"c").finish();
        let b = Hasher::default().field(b"a").field(b"bc").finish();
        assert_ne!(a, b);
        assert_ne!(digest(b"x"), digest(b"y"));
        assert_eq!(digest(b"x"), digest(b"x"));
        assert_ne!(digest(b""), [0u8; 32]);
    }
}
