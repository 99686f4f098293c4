//! How sprig turns a string into an integer (`int`, `int64`, `add`, `sub`, `mul`): spf13/cast's
//! `ToInt64`, which drops an all-zero fraction and then reads the rest as Go's
//! `strconv.ParseInt(s, 0, 64)`: an optional sign, a `0x`/`0o`/`0b`/`0` base prefix and `_`
//! between digits. Anything else is an error, which sprig turns into 0.

/// The integer `s` spells for cast, or `None` where cast reports an error.
pub fn parse(s: &str) -> Option<i64> {
    let s = trim_zero_decimal(s);
    let (negative, body) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let (radix, digits) = split_base(body)?;
    // strconv's underscoreOK: `_` only between digits or right after a base prefix (a leading 0
    // is one). A `_` next to anything else is caught below, as that is not a digit either.
    if digits.ends_with('_') || digits.contains("__") || (radix == 10 && digits.starts_with('_')) {
        return None;
    }
    let mut n: u64 = 0;
    for c in digits.chars().filter(|&c| c != '_') {
        let d = c.to_digit(radix)?;
        n = n.checked_mul(u64::from(radix))?.checked_add(u64::from(d))?;
    }
    if negative {
        0i64.checked_sub_unsigned(n)
    } else {
        i64::try_from(n).ok()
    }
}

/// cast's `trimZeroDecimal`: `"12.00"` → `"12"`, `"12.5"` and `"12."` unchanged.
fn trim_zero_decimal(s: &str) -> &str {
    match s.rsplit_once('.') {
        Some((int, frac)) if !frac.is_empty() && frac.bytes().all(|b| b == b'0') => int,
        _ => s,
    }
}

/// `strconv`'s base-0 prefix rule; `None` for an empty number.
fn split_base(body: &str) -> Option<(u32, &str)> {
    if body.is_empty() {
        return None;
    }
    let Some(after_zero) = body.strip_prefix('0') else {
        return Some((10, body));
    };
    let mut chars = after_zero.chars();
    let radix = match chars.next().map(|c| c.to_ascii_lowercase()) {
        Some('x') => 16,
        Some('o') => 8,
        Some('b') => 2,
        _ => return Some((8, after_zero)),
    };
    // "0x" alone is read as octal "x", which is not a digit.
    if chars.as_str().is_empty() {
        return Some((8, after_zero));
    }
    Some((radix, chars.as_str()))
}
