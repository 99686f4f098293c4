//! The vocabulary every layer speaks: the request view, the session handlers fill, the
//! callouts they ask for, the effects the core answers with, the rejections, and the small
//! codecs (percent-encoding, cookies, timestamps) these need. It imports nothing else from the
//! crate, so every other module can build on it (`tests/layers.rs` checks the whole order).

pub mod callout;
pub mod cookies;
pub mod effect;
pub mod log;
pub mod percent;
pub mod rejection;
pub mod request;
pub mod session;
pub mod stats;
pub mod time;
