//! A fast path for the `<…>` expressions rules mostly use (`.*`, `/?.*`, `s?`, `[0-9]+`,
//! `[^/]+`, `https|http`, `[[:digit:]]+`, …): a greedy, leftmost-first backtracking matcher over
//! the pattern's literal text and those expressions, which gives the same match and the same
//! capture groups as the regular expression, in a fraction of the time. Each search has a step
//! budget; a search that exhausts it reports so and the caller runs the linear-time regex, so
//! no input can make matching slow.
//!
//! Patterns with lookaround (`<(?!admin).*>`) have no regular expression to fall back on, so they
//! run the same matcher without a budget but with memory instead ([`Memo`]): a failed state
//! (piece or item, position) is never explored twice, a repeated item never retries an end
//! already known to fail, and an assertion is tested at most once per position. With `n` the
//! subject's length and `m` the pattern's, the search is at most `O(m·n)` steps plus, for each
//! assertion, `n + 1` evaluations of at most `W·|X|` steps (`W` the body's length bound, see
//! `lookaround.rs`); a body without a bound must follow only bounded text, so it is evaluated
//! at a number of positions fixed by the pattern, each in `O(n·|X|)`. Linear in `n` either way.

mod parse;
mod search;

use super::delimiters::Part;
use super::lookaround::{self, Look};
use super::PatternError;
use parse::*;
use search::*;

/// One character test.
#[derive(Debug, Clone)]
enum Atom {
    Char(char),
    /// `.`: any character but `\n`.
    Any,
    Class {
        ranges: Vec<(char, char)>,
        negated: bool,
    },
    /// A zero-width lookaround assertion, by index in `Simple::looks`.
    Look(usize),
}

impl Atom {
    fn test(&self, c: char) -> bool {
        match self {
            Atom::Char(x) => *x == c,
            Atom::Any => c != '\n',
            Atom::Class { ranges, negated } => {
                ranges.iter().any(|(a, b)| (*a..=*b).contains(&c)) != *negated
            }
            Atom::Look(_) => false,
        }
    }
}

/// An atom with `?`, `*`, `+` or no quantifier; always greedy.
#[derive(Debug, Clone)]
struct Item {
    atom: Atom,
    optional: bool,
    repeat: bool,
}

#[derive(Debug, Clone)]
enum Piece {
    /// Text outside `<…>`.
    Literal(String),
    /// A capture group holding a sequence of items.
    Seq(Vec<Item>),
    /// A capture group holding literal alternatives, tried in order.
    Alt(Vec<String>),
}

#[derive(Debug, Clone)]
pub struct Simple {
    pieces: Vec<Piece>,
    groups: usize,
    /// The lookaround assertions; when there are any, searches are memoised, not budgeted.
    looks: Vec<Look>,
    /// Per piece, its first memo slot: one for the piece, then one per item and one past them.
    slots: Vec<usize>,
    slot_count: usize,
}

/// A search ran out of steps: use the regular expression instead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exhausted;

impl Simple {
    /// The fast form of a regexp-strategy pattern, when every expression in it has one.
    pub fn compile(parts: &[Part<'_>]) -> Option<Simple> {
        Simple::build(parts, None).ok().flatten()
    }

    /// A pattern with lookaround, which only this matcher runs: every expression must be in the
    /// fast subset, and assertions come in as items.
    pub fn compile_lookaround(parts: &[Part<'_>]) -> Result<Simple, PatternError> {
        let mut looks = Vec::new();
        let simple = Simple::build(parts, Some(&mut looks))?.ok_or(PatternError::Unsupported(
            "lookaround beside anything but text, classes, ., ?, * and + in its <…> group",
        ))?;
        let mut prefix_bounded = true;
        for piece in &simple.pieces {
            let Piece::Seq(items) = piece else { continue };
            for it in items {
                match it.atom {
                    Atom::Look(k) if !prefix_bounded => {
                        if looks.get(k).is_some_and(|l| l.width.is_none()) {
                            return Err(PatternError::Unsupported(
                                "a lookaround whose body has no length bound (*, +, {…}) \
                                 after a part of unbounded length",
                            ));
                        }
                    }
                    _ => prefix_bounded &= !it.repeat,
                }
            }
        }
        Ok(Simple { looks, ..simple })
    }

    fn build(
        parts: &[Part<'_>],
        mut looks: Option<&mut Vec<Look>>,
    ) -> Result<Option<Simple>, PatternError> {
        let mut pieces = Vec::with_capacity(parts.len());
        let mut groups = 0;
        let mut slots = Vec::with_capacity(parts.len());
        let mut slot_count = 0;
        for part in parts {
            let piece = match part {
                Part::Literal(text) => Piece::Literal(text.to_string()),
                Part::Expr(expr) => {
                    groups += 1;
                    match parse_expr(expr, looks.as_deref_mut())? {
                        Some(piece) => piece,
                        None => return Ok(None),
                    }
                }
            };
            slots.push(slot_count);
            slot_count += match &piece {
                Piece::Seq(items) => items.len() + 2,
                _ => 1,
            };
            pieces.push(piece);
        }
        Ok(Some(Simple {
            pieces,
            groups,
            looks: Vec::new(),
            slots,
            slot_count: slot_count + 1,
        }))
    }

    pub fn groups(&self) -> usize {
        self.groups
    }

    /// Matches the whole subject; on success `spans` holds each group's byte range.
    pub fn search(
        &self,
        subject: &str,
        spans: &mut Vec<(usize, usize)>,
    ) -> Result<bool, Exhausted> {
        spans.clear();
        spans.resize(self.groups, (0, 0));
        if self.looks.is_empty() {
            return Search::<false> {
                subject,
                simple: self,
                pieces: &self.pieces,
                budget: 4096 + 16 * subject.len(),
                spans,
                memo: None,
            }
            .pieces_from(0, 0, 0);
        }
        Search::<true> {
            subject,
            simple: self,
            pieces: &self.pieces,
            budget: usize::MAX,
            spans,
            memo: Some(Memo::new(self, subject.len())),
        }
        .pieces_from(0, 0, 0)
    }

    fn slot(&self, piece: usize, item: Option<usize>) -> usize {
        self.slots
            .get(piece)
            .map_or(self.slot_count - 1, |s| s + item.map_or(0, |i| i + 1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::delimiters::split;

    fn both(pattern: &str) -> Option<(Simple, regex_lite::Regex)> {
        let parts = split(pattern).ok()?;
        let simple = Simple::compile(&parts)?;
        Some((simple, crate::rules::regexp::compile(pattern).ok()?))
    }

    fn regex_spans(re: &regex_lite::Regex, subject: &str) -> Option<Vec<(usize, usize)>> {
        re.captures(subject).map(|c| {
            c.iter()
                .skip(1)
                .map(|m| m.map_or((0, 0), |m| (m.start(), m.end())))
                .collect()
        })
    }

    #[test]
    fn common_rule_shapes_take_the_fast_path() {
        for p in [
            "http<s?>://echo.example.com</?.*>",
            "<https|http>://a/<.*>",
            "https://a/users/<[0-9]+>/<[^/]+>",
            "http://a/<[[:digit:]]+>",
            "http://a/<\\d+\\.json>",
        ] {
            assert!(both(p).is_some(), "{p}");
        }
        for p in [
            "http://a/<(x|y)>",
            "http://a/<.*?>",
            "http://a/<a{2}>",
            "http://a/<(?i)x>",
        ] {
            assert!(Simple::compile(&split(p).unwrap()).is_none(), "{p}");
        }
    }

    struct Gen(u64);
    impl Gen {
        fn next(&mut self) -> usize {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            (self.0 >> 11) as usize
        }
        fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
            items[self.next() % items.len()]
        }
    }

    /// The fast matcher is an optimisation only: same matches, same groups as the regex.
    #[test]
    fn agrees_with_the_regular_expression() {
        let exprs = [
            ".*",
            ".+",
            "s?",
            "/?.*",
            "[0-9]+",
            "[^/]+",
            "[a-z]*",
            "x|y|xy",
            "\\.",
            "a",
            "[[:digit:]]",
            "\\d+",
            "[^/]*",
            "y?x*",
            ".",
            "[a-c1-2]+",
            "é|e",
        ];
        let text = ["a", "s", "/", "x", "y", "1", "2", ".", "é", "-", "ab"];
        let mut g = Gen(0x5EED);
        let (mut compared, mut matched) = (0, 0);
        for _ in 0..3000 {
            let mut pattern = String::new();
            for _ in 0..(1 + g.next() % 4) {
                if g.next() % 2 == 0 {
                    pattern.push_str(g.pick(&text));
                }
                pattern.push('<');
                pattern.push_str(g.pick(&exprs));
                pattern.push('>');
            }
            let Some((simple, re)) = both(&pattern) else {
                continue;
            };
            for _ in 0..10 {
                let subject: String = (0..g.next() % 8).map(|_| g.pick(&text)).collect();
                let mut spans = Vec::new();
                let Ok(found) = simple.search(&subject, &mut spans) else {
                    continue;
                };
                let expected = regex_spans(&re, &subject);
                assert_eq!(found, expected.is_some(), "{pattern} on {subject:?}");
                if let Some(e) = expected {
                    assert_eq!(spans, e, "{pattern} on {subject:?}");
                    matched += 1;
                }
                compared += 1;
            }
        }
        assert!(
            compared > 10_000 && matched > 1_000,
            "{compared} compared, {matched} matched"
        );
    }

    #[test]
    fn a_pathological_search_exhausts_its_budget_instead_of_running_long() {
        let (simple, re) = both("<.*.*.*.*.*.*>x").unwrap();
        let subject = "a".repeat(3000);
        let mut spans = Vec::new();
        assert_eq!(simple.search(&subject, &mut spans), Err(Exhausted));
        assert!(!re.is_match(&subject));
    }
}
