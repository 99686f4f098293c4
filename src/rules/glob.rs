//! The `glob` matching strategy (gobwas/glob with `.` and `/` as separators), translated to a
//! linear-time regular expression once at configure time. Globs have no capture groups.

use super::delimiters::{split, Part};
use super::PatternError;
use regex_lite::Regex;

const NOT_SEPARATOR: &str = "[^./]";

pub fn compile(pattern: &str) -> Result<Regex, PatternError> {
    let mut re = String::with_capacity(pattern.len() * 2);
    re.push('^');
    for part in split(pattern).map_err(|_| PatternError::Unbalanced)? {
        match part {
            Part::Literal(text) => re.push_str(&regex_lite::escape(text)),
            Part::Expr(glob) => {
                let chars: Vec<char> = glob.chars().collect();
                let mut pos = 0;
                translate(&chars, &mut pos, false, &mut re)?;
            }
        }
    }
    re.push('$');
    Regex::new(&re).map_err(|e| PatternError::Regex(e.to_string()))
}

fn push_literal(c: char, re: &mut String) {
    let mut buf = [0u8; 4];
    re.push_str(&regex_lite::escape(c.encode_utf8(&mut buf)));
}

/// Translates from `pos` until the end, or until the `}` or `,` closing an alternative when
/// `in_alternation` is set.
fn translate(
    chars: &[char],
    pos: &mut usize,
    in_alternation: bool,
    re: &mut String,
) -> Result<(), PatternError> {
    while let Some(&c) = chars.get(*pos) {
        match c {
            '*' if chars.get(*pos + 1) == Some(&'*') => {
                re.push_str(".*");
                *pos += 2;
            }
            '*' => {
                re.push_str(NOT_SEPARATOR);
                re.push('*');
                *pos += 1;
            }
            '?' => {
                re.push_str(NOT_SEPARATOR);
                *pos += 1;
            }
            '\\' => {
                let escaped = chars.get(*pos + 1).ok_or(PatternError::Glob)?;
                push_literal(*escaped, re);
                *pos += 2;
            }
            '[' => {
                *pos += 1;
                class(chars, pos, re)?;
            }
            '{' => {
                *pos += 1;
                re.push_str("(?:");
                loop {
                    translate(chars, pos, true, re)?;
                    match chars.get(*pos) {
                        Some(',') => {
                            re.push('|');
                            *pos += 1;
                        }
                        Some('}') => {
                            re.push(')');
                            *pos += 1;
                            break;
                        }
                        _ => return Err(PatternError::Glob),
                    }
                }
            }
            ',' | '}' if in_alternation => return Ok(()),
            c => {
                push_literal(c, re);
                *pos += 1;
            }
        }
    }
    if in_alternation {
        return Err(PatternError::Glob);
    }
    Ok(())
}

fn class(chars: &[char], pos: &mut usize, re: &mut String) -> Result<(), PatternError> {
    re.push('[');
    if chars.get(*pos) == Some(&'!') {
        re.push('^');
        *pos += 1;
    }
    let mut empty = true;
    while let Some(&c) = chars.get(*pos) {
        *pos += 1;
        match c {
            ']' if !empty => {
                re.push(']');
                return Ok(());
            }
            '-' if !empty && chars.get(*pos) != Some(&']') => re.push('-'),
            c if c.is_ascii_punctuation() => {
                re.push('\\');
                re.push(c);
            }
            c => re.push(c),
        }
        empty = false;
    }
    Err(PatternError::Glob)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(pattern: &str, subject: &str) -> bool {
        compile(pattern).unwrap().is_match(subject)
    }

    #[test]
    fn gobwas_semantics() {
        assert!(m("http://example.com/<*>", "http://example.com/foo"));
        assert!(!m("http://example.com/<*>", "http://example.com/foo/bar"));
        assert!(!m("http://<*>.com/", "http://a.b.com/"));
        assert!(m(
            "http://example.com/<**>",
            "http://example.com/foo/bar.baz"
        ));
        assert!(m("http://example.com/<?>", "http://example.com/a"));
        assert!(!m("http://example.com/<?>", "http://example.com/ab"));
        assert!(m("http://x/<[a,o,u]>", "http://x/o"));
        assert!(!m("http://x/<[!a,o,u]>", "http://x/o"));
        assert!(m("http://x/<[!a,o,u]>", "http://x/e"));
        assert!(m("http://x/<[a-c]>", "http://x/b"));
        assert!(m("http://x/<{foo*,bar*}>", "http://x/barista"));
        assert!(!m("http://x/<{foo*,bar*}>", "http://x/baz"));
        assert!(m("http://x/*?", "http://x/*?"));
        assert!(!m("http://x/*", "http://x/a"));
        assert!(m(
            "https://<*>.example.com/<**>",
            "https://api.example.com/v1/users"
        ));
    }

    #[test]
    fn malformed_globs_are_errors() {
        for p in ["http://x/<[ab>", "http://x/<{a,b>", "http://x/<a\\>"] {
            assert!(compile(p).is_err(), "{p}");
        }
    }
}
