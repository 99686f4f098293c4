//! Looking a handler up in its family's registry (Oathkeeper name → build function): one lookup
//! and one "unknown handler" answer for every family.

use super::{Invalid, Kind};

/// A family's registry: each handler's Oathkeeper name and how to build it.
pub type Registry<B> = [(&'static str, B)];

/// The entry for `name`, or why there is none (listing the names the family knows).
pub fn entry<B: Copy>(registry: &Registry<B>, name: &str) -> Result<(&'static str, B), Invalid> {
    registry
        .iter()
        .find(|(n, _)| *n == name)
        .copied()
        .ok_or_else(|| {
            Invalid::whole(Kind::UnknownHandler {
                name: name.to_string(),
                known: names(registry).collect::<Vec<_>>().join(", "),
            })
        })
}

/// The names a family knows, in registry order.
pub fn names<B>(registry: &Registry<B>) -> impl Iterator<Item = &'static str> + '_ {
    registry.iter().map(|(name, _)| *name)
}
