//! JOSE: JSON Web Key sets, compact JWTs, Oathkeeper's claim checks and fosite's scope
//! strategies. Parsing and checks are ours so that every cheap rejection happens before any
//! signature math; the signature math itself is jwt-simple's.

pub mod claims;
pub mod crypto;
pub mod der;
pub mod jwk;
pub mod proto;
pub mod scope;
pub mod signer;
pub mod token;

/// Runs `f` in a function of its own: the compiler may not inline it into the caller. For the
/// per-algorithm arms of the jwt-simple fallback, each of which would otherwise add its own copy
/// of jwt-simple's generic code to one very large function.
#[inline(never)]
fn apart<T>(f: impl FnOnce() -> T) -> T {
    f()
}
