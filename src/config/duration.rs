//! Go duration strings (`2s`, `500ms`, `1m30s`), as Oathkeeper configs write timeouts and ttls.

/// Milliseconds in a Go duration; `None` when it does not parse or is negative.
pub fn parse_ms(text: &str) -> Option<u64> {
    let mut rest = text.trim();
    if rest.is_empty() {
        return None;
    }
    if rest == "0" {
        return Some(0);
    }
    let mut total = 0f64;
    while !rest.is_empty() {
        let num_end = rest.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
        let value: f64 = rest.get(..num_end)?.parse().ok()?;
        rest = rest.get(num_end..)?;
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let factor = match rest.get(..unit_end)? {
            "ns" => 1e-6,
            "us" | "µs" => 1e-3,
            "ms" => 1.0,
            "s" => 1e3,
            "m" => 60e3,
            "h" => 3600e3,
            _ => return None,
        };
        total += value * factor;
        rest = rest.get(unit_end..)?;
    }
    Some(total.round() as u64)
}

#[cfg(test)]
mod tests {
    #[test]
    fn go_durations() {
        assert_eq!(super::parse_ms("2s"), Some(2000));
        assert_eq!(super::parse_ms("500ms"), Some(500));
        assert_eq!(super::parse_ms("1m30s"), Some(90_000));
        assert_eq!(super::parse_ms("1.5h"), Some(5_400_000));
        assert_eq!(super::parse_ms("0"), Some(0));
        for bad in ["", "2", "2x", "-1s", "s"] {
            assert_eq!(super::parse_ms(bad), None, "{bad}");
        }
    }
}
