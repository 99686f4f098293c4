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

use super::delimiters::Part;
use super::lookaround::{self, Look};
use super::PatternError;

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

/// One `<…>` expression, or `Ok(None)` when it is not in the fast subset. With `looks`,
/// lookaround assertions are items too (and an error names what a lookaround cannot carry).
fn parse_expr(
    expr: &str,
    mut looks: Option<&mut Vec<Look>>,
) -> Result<Option<Piece>, PatternError> {
    if expr.contains('|') && !(looks.is_some() && expr.contains("(?")) {
        let alts: Vec<String> = expr.split('|').map(str::to_string).collect();
        return Ok(alts
            .iter()
            .all(|a| !a.chars().any(is_meta))
            .then_some(Piece::Alt(alts)));
    }
    let chars: Vec<char> = expr.chars().collect();
    let mut items = Vec::new();
    let mut pos = 0;
    while let Some(&c) = chars.get(pos) {
        pos += 1;
        let atom = match c {
            '.' => Atom::Any,
            '[' => match parse_class(&chars, &mut pos) {
                Some(atom) => atom,
                None => return Ok(None),
            },
            '\\' => {
                let Some(&e) = chars.get(pos) else {
                    return Ok(None);
                };
                pos += 1;
                match perl_class(e) {
                    Some(ranges) => Atom::Class {
                        ranges,
                        negated: false,
                    },
                    None if e.is_ascii_punctuation() => Atom::Char(e),
                    None => return Ok(None),
                }
            }
            '(' => {
                let rest = chars.get(pos - 1..).unwrap_or_default();
                let (Some(looks), Some((len, look))) =
                    (looks.as_deref_mut(), lookaround::parse(rest)?)
                else {
                    return Ok(None);
                };
                pos += len - 1;
                if chars.get(pos).is_some_and(|c| "?*+{".contains(*c)) {
                    return Err(PatternError::Unsupported("a quantified lookaround"));
                }
                looks.push(look);
                Atom::Look(looks.len() - 1)
            }
            c if is_meta(c) => return Ok(None),
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
                return Ok(None);
            }
        }
        items.push(Item {
            atom,
            optional,
            repeat,
        });
    }
    Ok(Some(Piece::Seq(items)))
}

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

const UNKNOWN: usize = usize::MAX;

/// What a lookaround search has learnt so far (see the module doc for the bound it gives).
struct Memo {
    /// Positions per slot: `n + 1`.
    width: usize,
    /// Bit `slot * width + pos`: matching on from there fails.
    failed: Vec<u64>,
    /// `look * width + pos`: 0 untested, 1 holds, 2 fails.
    looks: Vec<u8>,
    /// Per slot of a repeated item, lazily: where the run of matching characters starting at
    /// each position ends, and, per run end, the lowest end already tried (all above failed).
    runs: Vec<Option<(Vec<usize>, Vec<usize>)>>,
}

impl Memo {
    fn new(simple: &Simple, n: usize) -> Memo {
        let width = n + 1;
        Memo {
            width,
            failed: vec![0; (simple.slot_count * width).div_ceil(64)],
            looks: vec![0; simple.looks.len() * width],
            runs: vec![None; simple.slot_count],
        }
    }

    fn has_failed(&self, slot: usize, pos: usize) -> bool {
        let bit = slot * self.width + pos;
        self.failed
            .get(bit / 64)
            .is_some_and(|w| w & (1 << (bit % 64)) != 0)
    }

    fn fail(&mut self, slot: usize, pos: usize) {
        let bit = slot * self.width + pos;
        if let Some(w) = self.failed.get_mut(bit / 64) {
            *w |= 1 << (bit % 64);
        }
    }
}

/// Where a search is inside a `Seq` piece: its items, the piece, its group and where it began.
#[derive(Clone, Copy)]
struct Frame<'p> {
    items: &'p [Item],
    piece: usize,
    group: usize,
    start: usize,
}

/// `MEMO`: a lookaround search, memoised and unbudgeted; plain searches compile without it.
struct Search<'a, const MEMO: bool> {
    subject: &'a str,
    simple: &'a Simple,
    pieces: &'a [Piece],
    budget: usize,
    spans: &'a mut Vec<(usize, usize)>,
    memo: Option<Memo>,
}

impl<const MEMO: bool> Search<'_, MEMO> {
    fn step(&mut self) -> Result<(), Exhausted> {
        self.budget = self.budget.checked_sub(1).ok_or(Exhausted)?;
        Ok(())
    }

    /// Runs `explore` for the state `slot` at `pos` unless it is known to fail, and remembers a
    /// failure.
    fn memoised(
        &mut self,
        slot: usize,
        pos: usize,
        explore: impl FnOnce(&mut Self) -> Result<bool, Exhausted>,
    ) -> Result<bool, Exhausted> {
        if self.memo.as_ref().is_some_and(|m| m.has_failed(slot, pos)) {
            return Ok(false);
        }
        let found = explore(self)?;
        if !found {
            if let Some(m) = self.memo.as_mut() {
                m.fail(slot, pos);
            }
        }
        Ok(found)
    }

    /// Matches pieces from `piece` at byte `pos`; `group` is the index of the next group.
    fn pieces_from(&mut self, piece: usize, pos: usize, group: usize) -> Result<bool, Exhausted> {
        self.step()?;
        if !MEMO {
            return self.piece_at(piece, pos, group);
        }
        let slot = self.simple.slot(piece, None);
        self.memoised(slot, pos, |s| s.piece_at(piece, pos, group))
    }

    #[inline(always)]
    fn piece_at(&mut self, piece: usize, pos: usize, group: usize) -> Result<bool, Exhausted> {
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
            Piece::Seq(items) => {
                let frame = Frame {
                    items,
                    piece,
                    group,
                    start: pos,
                };
                self.items_from(&frame, 0, pos)
            }
        }
    }

    fn items_from(&mut self, f: &Frame<'_>, item: usize, pos: usize) -> Result<bool, Exhausted> {
        self.step()?;
        if !MEMO {
            return self.item_at(f, item, pos);
        }
        let slot = self.simple.slot(f.piece, Some(item));
        self.memoised(slot, pos, |s| s.item_at(f, item, pos))
    }

    #[inline(always)]
    fn item_at(&mut self, f: &Frame<'_>, item: usize, pos: usize) -> Result<bool, Exhausted> {
        let Some(it) = f.items.get(item) else {
            if self.pieces_from(f.piece + 1, pos, f.group + 1)? {
                self.set(f.group, f.start, pos);
                return Ok(true);
            }
            return Ok(false);
        };
        if let (true, Atom::Look(k)) = (MEMO, &it.atom) {
            let k = *k;
            if !self.holds(k, pos) {
                return Ok(false);
            }
            return self.items_from(f, item + 1, pos);
        }
        if MEMO && it.repeat {
            return self.repeat_memoised(f, item, pos);
        }
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
            if self.items_from(f, item + 1, end)? {
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

    /// Whether lookaround `k` holds at `pos`, tested once per position.
    fn holds(&mut self, k: usize, pos: usize) -> bool {
        let (subject, looks) = (self.subject, &self.simple.looks);
        let Some(m) = self.memo.as_mut() else {
            return false;
        };
        let Some(known) = m.looks.get_mut(k * m.width + pos) else {
            return false;
        };
        if *known == 0 {
            let holds = looks.get(k).is_some_and(|l| l.holds(subject, pos));
            *known = if holds { 1 } else { 2 };
        }
        *known == 1
    }

    /// The greedy loop of a repeated item, under a memo: ends are tried from the end of the
    /// run of matching characters down, skipping those an earlier state of this item already
    /// tried (they failed, or the search would be over), so each end is tried once per item.
    fn repeat_memoised(
        &mut self,
        f: &Frame<'_>,
        item: usize,
        pos: usize,
    ) -> Result<bool, Exhausted> {
        let slot = self.simple.slot(f.piece, Some(item));
        let Some(it) = f.items.get(item) else {
            return Ok(false);
        };
        let run = self.run_end(slot, &it.atom, pos);
        let first = self
            .subject
            .get(pos..run)
            .and_then(|taken| taken.chars().next())
            .map_or(0, char::len_utf8);
        if first == 0 && !it.optional {
            return Ok(false);
        }
        let lowest = if it.optional { pos } else { pos + first };
        let tried = self.low(slot, run);
        let mut end = if tried == UNKNOWN { run } else { tried };
        if tried != UNKNOWN {
            if end <= lowest {
                return Ok(false);
            }
            end = self.back(pos, end);
        }
        loop {
            if self.items_from(f, item + 1, end)? {
                return Ok(true);
            }
            self.set_low(slot, run, end);
            if end <= lowest {
                return Ok(false);
            }
            end = self.back(pos, end);
        }
    }

    /// The position one character before `end` (not before `pos`).
    fn back(&self, pos: usize, end: usize) -> usize {
        let len = self
            .subject
            .get(pos..end)
            .and_then(|taken| taken.chars().next_back())
            .map_or(1, char::len_utf8);
        end.saturating_sub(len).max(pos)
    }

    fn runs(&mut self, slot: usize) -> Option<&mut (Vec<usize>, Vec<usize>)> {
        let width = self.subject.len() + 1;
        let entry = self.memo.as_mut()?.runs.get_mut(slot)?;
        Some(entry.get_or_insert_with(|| (vec![UNKNOWN; width], vec![UNKNOWN; width])))
    }

    /// Where the run of characters passing `atom` from `pos` ends; each position is scanned
    /// once per item.
    fn run_end(&mut self, slot: usize, atom: &Atom, pos: usize) -> usize {
        let subject = self.subject;
        let Some((ends, _)) = self.runs(slot) else {
            return pos;
        };
        let mut seen = Vec::new();
        let mut at = pos;
        let end = loop {
            match ends.get(at) {
                Some(&known) if known != UNKNOWN => break known,
                _ => {}
            }
            match subject.get(at..).and_then(|rest| rest.chars().next()) {
                Some(c) if atom.test(c) => {
                    seen.push(at);
                    at += c.len_utf8();
                }
                _ => break at,
            }
        };
        for p in seen.into_iter().chain(std::iter::once(at)) {
            if let Some(e) = ends.get_mut(p) {
                if *e == UNKNOWN {
                    *e = end;
                }
            }
        }
        end
    }

    fn low(&mut self, slot: usize, run: usize) -> usize {
        self.runs(slot)
            .and_then(|(_, low)| low.get(run).copied())
            .unwrap_or(UNKNOWN)
    }

    fn set_low(&mut self, slot: usize, run: usize, end: usize) {
        if let Some(l) = self.runs(slot).and_then(|(_, low)| low.get_mut(run)) {
            *l = end;
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
