//! Lookahead and lookbehind inside a `<…>` group (`<(?!admin).*>`, `<[a-z]+(?<!x)>>`), which
//! Oathkeeper's backtracking engine (regexp2) runs and regex-lite cannot express.
//!
//! An assertion's truth depends only on the position where it is tested (no captures and no
//! backreferences cross it), so the matcher in `simple.rs` treats it as a zero-width item and
//! asks [`Look::holds`] once per position, remembering the answer. The body is an ordinary
//! regex-lite expression run anchored at that position: `^(?:X)` on the text after it for a
//! lookahead, `(?:X)$` on the text before it for a lookbehind.
//!
//! Cost: one evaluation is at most `W × |X|` steps, where `W` is the longest text the body can
//! match (no `*`, `+` or `{`) and otherwise the subject's length. A body without such a bound
//! is accepted only where the text on one side of it has a bounded length, so it is reached at
//! a bounded number of positions; `simple.rs` states the whole bound.

use super::PatternError;
use regex_lite::Regex;

#[derive(Debug, Clone)]
pub struct Look {
    /// Lookahead (`(?=`, `(?!`) or lookbehind (`(?<=`, `(?<!`).
    ahead: bool,
    /// `(?!`, `(?<!`: holds when the body does not match.
    negated: bool,
    regex: Regex,
    /// The longest text the body can match, in characters, when it has a bound.
    pub width: Option<usize>,
}

impl Look {
    /// Whether the assertion holds at byte `pos` of `subject`.
    pub fn holds(&self, subject: &str, pos: usize) -> bool {
        let found = if self.ahead {
            self.regex.is_match(subject.get(pos..).unwrap_or_default())
        } else {
            // A bounded body only needs the last `width` characters before `pos`.
            let from = match self.width {
                Some(w) => subject
                    .get(..pos)
                    .unwrap_or_default()
                    .char_indices()
                    .rev()
                    .nth(w.saturating_sub(1))
                    .map_or(0, |(i, _)| i),
                None => 0,
            };
            self.regex
                .is_match(subject.get(from..pos).unwrap_or_default())
        };
        found != self.negated
    }
}

/// A lookaround at the start of `chars`, which begins with `(?`: its length in characters and
/// the compiled assertion. `Ok(None)` when `chars` does not start a lookaround.
pub fn parse(chars: &[char]) -> Result<Option<(usize, Look)>, PatternError> {
    let (ahead, negated, open) = match chars {
        ['(', '?', '=', ..] => (true, false, 3),
        ['(', '?', '!', ..] => (true, true, 3),
        ['(', '?', '<', '=', ..] => (false, false, 4),
        ['(', '?', '<', '!', ..] => (false, true, 4),
        _ => return Ok(None),
    };
    let len = body_len(chars.get(open..).unwrap_or_default())
        .ok_or(PatternError::Unsupported("an unclosed lookaround"))?;
    let body: String = chars
        .get(open..open + len)
        .unwrap_or_default()
        .iter()
        .collect();
    let width = check_body(&body, ahead)?;
    let source = if ahead {
        format!("^(?:{body})")
    } else {
        format!("(?:{body})$")
    };
    let regex = Regex::new(&source).map_err(|e| PatternError::Regex(e.to_string()))?;
    if regex.captures_len() > 1 {
        return Err(PatternError::Unsupported(
            "a capture group inside a lookaround",
        ));
    }
    let look = Look {
        ahead,
        negated,
        regex,
        width,
    };
    Ok(Some((open + len + 1, look)))
}

/// The length of a lookaround body up to its closing `)`, skipping escapes, classes and
/// nested groups.
fn body_len(chars: &[char]) -> Option<usize> {
    let mut depth = 0usize;
    let mut i = 0;
    while let Some(&c) = chars.get(i) {
        match c {
            '\\' => i += 1,
            '[' => i = class_end(chars, i)?,
            '(' => depth += 1,
            ')' if depth == 0 => return Some(i),
            ')' => depth -= 1,
            _ => {}
        }
        i += 1;
    }
    None
}

/// The index of the `]` closing the class opened at `open`.
fn class_end(chars: &[char], open: usize) -> Option<usize> {
    let mut i = open + 1;
    if chars.get(i) == Some(&'^') {
        i += 1;
    }
    // A `]` first in the class is literal.
    if chars.get(i) == Some(&']') {
        i += 1;
    }
    while let Some(&c) = chars.get(i) {
        match c {
            '\\' => i += 1,
            '[' if chars.get(i + 1) == Some(&':') => {
                i = (i + 2..chars.len())
                    .find(|&j| chars.get(j) == Some(&':') && chars.get(j + 1) == Some(&']'))?
                    + 1;
            }
            '[' => i = class_end(chars, i)?,
            ']' => return Some(i),
            _ => {}
        }
        i += 1;
    }
    None
}

/// Refuses what the body cannot carry and returns its length bound. The body runs on a slice
/// of the subject, so assertions that look outside the slice (`^`, `\b`, and `$` behind) would
/// answer wrongly; nested lookaround and backreferences are not regex-lite syntax.
fn check_body(body: &str, ahead: bool) -> Result<Option<usize>, PatternError> {
    let chars: Vec<char> = body.chars().collect();
    let mut bounded = true;
    let mut i = 0;
    while let Some(&c) = chars.get(i) {
        match c {
            '\\' => {
                i += 1;
                match chars.get(i) {
                    Some('b' | 'B' | 'A' | 'z' | 'Z' | 'G' | '<' | '>') => {
                        return Err(PatternError::Unsupported(
                            "an anchor or word boundary inside a lookaround",
                        ))
                    }
                    Some(d) if d.is_ascii_digit() || *d == 'k' => {
                        return Err(PatternError::Unsupported("backreferences"))
                    }
                    _ => {}
                }
            }
            '[' => i = class_end(&chars, i).unwrap_or(chars.len()),
            '(' if chars.get(i + 1) == Some(&'?')
                && matches!(chars.get(i + 2), Some('=' | '!' | '<')) =>
            {
                return Err(PatternError::Unsupported("nested lookaround"))
            }
            '^' => {
                return Err(PatternError::Unsupported(
                    "an anchor or word boundary inside a lookaround",
                ))
            }
            '$' if !ahead => {
                return Err(PatternError::Unsupported("$ inside a lookbehind"));
            }
            '*' | '+' | '{' => bounded = false,
            _ => {}
        }
        i += 1;
    }
    // Every character of the body consumes at most one character of the subject.
    Ok(bounded.then_some(chars.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn look(src: &str) -> Look {
        let chars: Vec<char> = src.chars().collect();
        let (len, look) = parse(&chars).unwrap().unwrap();
        assert_eq!(len, chars.len(), "{src}");
        look
    }

    #[test]
    fn assertions_hold_where_the_body_does_or_does_not_match() {
        let not_admin = look("(?!admin)");
        assert!(!not_admin.holds("/users/admin", 7));
        assert!(!not_admin.holds("/users/administrator", 7));
        assert!(not_admin.holds("/users/manager", 7));
        assert!(not_admin.holds("/users/adm", 7));
        let end = look("(?=admin$)");
        assert!(end.holds("/admin", 1));
        assert!(!end.holds("/admin/x", 1));
        let behind = look("(?<!\\.json)");
        assert!(!behind.holds("/a.json/b", 7));
        assert!(behind.holds("/a.json/b", 9));
        assert!(behind.holds("json", 4));
        let unbounded = look("(?<=[0-9]+)");
        assert_eq!(unbounded.width, None);
        assert!(unbounded.holds("ab12", 4));
        assert!(!unbounded.holds("ab12", 2));
        assert_eq!(look("(?=[)]x)").width, Some(4));
    }

    #[test]
    fn what_the_body_cannot_carry_is_named() {
        for (src, what) in [
            ("(?!(a))", "a capture group inside a lookaround"),
            ("(?!a(?=b))", "nested lookaround"),
            ("(?!\\bx)", "an anchor or word boundary inside a lookaround"),
            ("(?!^x)", "an anchor or word boundary inside a lookaround"),
            ("(?<!x$)", "$ inside a lookbehind"),
            ("(?!a", "an unclosed lookaround"),
            ("(?!\\1)", "backreferences"),
        ] {
            let chars: Vec<char> = src.chars().collect();
            assert_eq!(
                parse(&chars).unwrap_err(),
                PatternError::Unsupported(what),
                "{src}"
            );
        }
        assert!(matches!(
            parse(&"(?!a{)".chars().collect::<Vec<_>>()),
            Err(PatternError::Regex(_))
        ));
        assert!(parse(&"(?:a)".chars().collect::<Vec<_>>())
            .unwrap()
            .is_none());
    }
}
