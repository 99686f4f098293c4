//! A fast path for the `<…>` expressions rules mostly use (`.*`, `/?.*`, `s?`, `[0-9]+`,
//! `[^/]+`, `https|http`, `[[:digit:]]+`, …): a greedy, leftmost-first backtracking matcher over
//! the pattern's literal text and those expressions, which gives the same match and the same
//! capture groups as the regular expression, in a fraction of the time. Each search has a step
//! budget; a search that exhausts it reports so and the caller runs the linear-time regex, so
//! no input can make matching slow.

use super::delimiters::Part;

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
}

impl Atom {
    fn test(&self, c: char) -> bool {
        match self {
            Atom::Char(x) => *x == c,
            Atom::Any => c != '\n',
            Atom::Class { ranges, negated } => {
                ranges.iter().any(|(a, b)| (*a..=*b).contains(&c)) != *negated
            }
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
}

/// A search ran out of steps: use the regular expression instead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exhausted;

const POSIX: &[(&str, &[(char, char)])] = &[
    ("digit", &[('0', '9')]),
    ("alpha", &[('a', 'z'), ('A', 'Z')]),
    ("alnum", &[('a', 'z'), ('A', 'Z'), ('0', '9')]),
    ("upper", &[('A', 'Z')]),
    ("lower", &[('a', 'z')]),
    ("xdigit", &[('0', '9'), ('a', 'f'), ('A', 'F')]),
    ("word", &[('a', 'z'), ('A', 'Z'), ('0', '9'), ('_', '_')]),
    ("space", &[(' ', ' '), ('\t', '\r')]),
];

fn perl_class(c: char) -> Option<Vec<(char, char)>> {
    let name = match c {
        'd' => "digit",
        'w' => "word",
        's' => "space",
        _ => return None,
    };
    POSIX
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, r)| r.to_vec())
}

/// Characters that mean something in a regular expression.
fn is_meta(c: char) -> bool {
    ".[]()|?*+{}^$\\".contains(c)
}

fn parse_class(chars: &[char], pos: &mut usize) -> Option<Atom> {
    let mut negated = false;
    if chars.get(*pos) == Some(&'^') {
        negated = true;
        *pos += 1;
    }
    let mut ranges = Vec::new();
    let mut first = true;
    loop {
        let c = *chars.get(*pos)?;
        *pos += 1;
        match c {
            ']' if !first => return Some(Atom::Class { ranges, negated }),
            '[' if chars.get(*pos) == Some(&':') => {
                let end = (*pos..chars.len())
                    .find(|&i| chars.get(i) == Some(&':') && chars.get(i + 1) == Some(&']'))?;
                let name: String = chars.get(*pos + 1..end)?.iter().collect();
                ranges.extend_from_slice(POSIX.iter().find(|(n, _)| *n == name)?.1);
                *pos = end + 2;
            }
            '[' | '&' | '~' => return None,
            '\\' => {
                let e = *chars.get(*pos)?;
                *pos += 1;
                match perl_class(e) {
                    Some(r) => ranges.extend(r),
                    None if e.is_ascii_punctuation() => ranges.push((e, e)),
                    None => return None,
                }
            }
            c => {
                let is_range =
                    chars.get(*pos) == Some(&'-') && chars.get(*pos + 1).is_some_and(|n| *n != ']');
                if is_range {
                    let hi = *chars.get(*pos + 1)?;
                    if hi == '\\' || hi == '[' || hi < c {
                        return None;
                    }
                    ranges.push((c, hi));
                    *pos += 2;
                } else {
                    ranges.push((c, c));
                }
            }
        }
        first = false;
    }
}

fn parse_expr(expr: &str) -> Option<Piece> {
    if expr.contains('|') {
        let alts: Vec<String> = expr.split('|').map(str::to_string).collect();
        return alts
            .iter()
            .all(|a| !a.chars().any(is_meta))
            .then_some(Piece::Alt(alts));
    }
    let chars: Vec<char> = expr.chars().collect();
    let mut items = Vec::new();
    let mut pos = 0;
    while let Some(&c) = chars.get(pos) {
        pos += 1;
        let atom = match c {
            '.' => Atom::Any,
            '[' => parse_class(&chars, &mut pos)?,
            '\\' => {
                let e = *chars.get(pos)?;
                pos += 1;
                match perl_class(e) {
                    Some(ranges) => Atom::Class {
                        ranges,
                        negated: false,
                    },
                    None if e.is_ascii_punctuation() => Atom::Char(e),
                    None => return None,
                }
            }
            c if is_meta(c) => return None,
            c => Atom::Char(c),
        };
        let (optional, repeat) = match chars.get(pos) {
            Some('?') => (true, false),
            Some('*') => (true, true),
            Some('+') => (false, true),
            _ => (false, false),
        };
        if optional || repeat {
            pos += 1;
            // Lazy (`*?`) and possessive forms change which match is found.
            if chars.get(pos).is_some_and(|c| "?+*{".contains(*c)) {
                return None;
            }
        }
        items.push(Item {
            atom,
            optional,
            repeat,
        });
    }
    Some(Piece::Seq(items))
}

impl Simple {
    /// The fast form of a regexp-strategy pattern, when every expression in it has one.
    pub fn compile(parts: &[Part<'_>]) -> Option<Simple> {
        let mut pieces = Vec::with_capacity(parts.len());
        let mut groups = 0;
        for part in parts {
            pieces.push(match part {
                Part::Literal(text) => Piece::Literal(text.to_string()),
                Part::Expr(expr) => {
                    groups += 1;
                    parse_expr(expr)?
                }
            });
        }
        Some(Simple { pieces, groups })
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
        let mut search = Search {
            subject,
            pieces: &self.pieces,
            budget: 4096 + 16 * subject.len(),
            spans,
        };
        search.pieces_from(0, 0, 0)
    }
}

struct Search<'a> {
    subject: &'a str,
    pieces: &'a [Piece],
    budget: usize,
    spans: &'a mut Vec<(usize, usize)>,
}

impl Search<'_> {
    fn step(&mut self) -> Result<(), Exhausted> {
        self.budget = self.budget.checked_sub(1).ok_or(Exhausted)?;
        Ok(())
    }

    /// Matches pieces from `piece` at byte `pos`; `group` is the index of the next group.
    fn pieces_from(&mut self, piece: usize, pos: usize, group: usize) -> Result<bool, Exhausted> {
        self.step()?;
        let Some(p) = self.pieces.get(piece) else {
            return Ok(pos == self.subject.len());
        };
        let rest = self.subject.get(pos..).unwrap_or_default();
        match p {
            Piece::Literal(text) => {
                if rest.starts_with(text.as_str()) {
                    self.pieces_from(piece + 1, pos + text.len(), group)
                } else {
                    Ok(false)
                }
            }
            Piece::Alt(alts) => {
                for alt in alts {
                    if rest.starts_with(alt.as_str())
                        && self.pieces_from(piece + 1, pos + alt.len(), group + 1)?
                    {
                        self.set(group, pos, pos + alt.len());
                        return Ok(true);
                    }
                }
                Ok(false)
            }
            Piece::Seq(items) => self.items_from(items, 0, pos, piece, group, pos),
        }
    }

    fn items_from(
        &mut self,
        items: &[Item],
        item: usize,
        pos: usize,
        piece: usize,
        group: usize,
        start: usize,
    ) -> Result<bool, Exhausted> {
        self.step()?;
        let Some(it) = items.get(item) else {
            if self.pieces_from(piece + 1, pos, group + 1)? {
                self.set(group, start, pos);
                return Ok(true);
            }
            return Ok(false);
        };
        let rest = self.subject.get(pos..).unwrap_or_default();
        // Greedy: take as many as allowed, then give back one character at a time.
        let mut end = pos;
        for c in rest.chars() {
            if !it.atom.test(c) {
                break;
            }
            end += c.len_utf8();
            if !it.repeat {
                break;
            }
        }
        if end == pos && !it.optional {
            return Ok(false);
        }
        loop {
            if self.items_from(items, item + 1, end, piece, group, start)? {
                return Ok(true);
            }
            if end == pos {
                return Ok(false);
            }
            let back = self
                .subject
                .get(pos..end)
                .and_then(|taken| taken.chars().next_back())
                .map_or(1, char::len_utf8);
            end -= back;
            if end == pos && !it.optional {
                return Ok(false);
            }
        }
    }

    fn set(&mut self, group: usize, start: usize, end: usize) {
        if let Some(span) = self.spans.get_mut(group) {
            *span = (start, end);
        }
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
