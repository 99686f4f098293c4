//! Reading a `<…>` expression into the fast matcher's items: literal text, classes (POSIX and
//! Perl), `.`, and the `?`, `*` and `+` repeats; anything else leaves the pattern to regex-lite.

use super::*;

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

pub(super) fn perl_class(c: char) -> Option<Vec<(char, char)>> {
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
pub(super) fn is_meta(c: char) -> bool {
    ".[]()|?*+{}^$\\".contains(c)
}

pub(super) fn parse_class(chars: &[char], pos: &mut usize) -> Option<Atom> {
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
pub(super) fn parse_expr(
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
