//! The configuration loader: any bytes either load or are refused, the same way twice, and a
//! loaded configuration answers a request.

use super::pipeline::{get, Exchange};
use portcullis::vocab::effect::Effect;

pub fn config(data: &[u8]) {
    let first = portcullis::filter::load(data);
    let second = portcullis::filter::load(data);
    assert_eq!(
        first.is_ok(),
        second.is_ok(),
        "loading is not deterministic"
    );
    if let (Err(a), Err(b)) = (&first, &second) {
        assert_eq!(a.to_string(), b.to_string());
    }
    let Ok(filter) = first else { return };
    let mut ex = Exchange::new(std::sync::Arc::new(filter));
    let effects = ex.start(get("http", "echo.example.com", "/", &[]));
    assert!(
        effects.iter().any(|e| matches!(
            e,
            Effect::Continue | Effect::Reply(_) | Effect::Dispatch(..)
        )),
        "a request got no answer: {effects:?}"
    );
}
