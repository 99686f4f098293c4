//! Splits a `match.url` pattern into literal text and `<…>` segments, with Oathkeeper's nesting
//! rules: `<` and `>` nest, and an unbalanced pattern is an error.

/// A piece of a pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Part<'a> {
    Literal(&'a str),
    /// The text between the outermost `<` and `>`, inner delimiters included.
    Expr(&'a str),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unbalanced;

pub fn split(pattern: &str) -> Result<Vec<Part<'_>>, Unbalanced> {
    let mut parts = Vec::new();
    let mut depth = 0usize;
    let mut start = 0usize;
    for (i, c) in pattern.char_indices() {
        match c {
            '<' => {
                if depth == 0 {
                    if let Some(lit) = pattern.get(start..i).filter(|s| !s.is_empty()) {
                        parts.push(Part::Literal(lit));
                    }
                    start = i + 1;
                }
                depth += 1;
            }
            '>' => {
                depth = depth.checked_sub(1).ok_or(Unbalanced)?;
                if depth == 0 {
                    parts.push(Part::Expr(pattern.get(start..i).ok_or(Unbalanced)?));
                    start = i + 1;
                }
            }
            _ => {}
        }
    }
    if depth != 0 {
        return Err(Unbalanced);
    }
    if let Some(lit) = pattern.get(start..).filter(|s| !s.is_empty()) {
        parts.push(Part::Literal(lit));
    }
    Ok(parts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_and_nests() {
        assert_eq!(
            split("http<s?>://a.com/<.*>").unwrap(),
            vec![
                Part::Literal("http"),
                Part::Expr("s?"),
                Part::Literal("://a.com/"),
                Part::Expr(".*")
            ]
        );
        assert_eq!(
            split("foo.bar<<>><>").unwrap(),
            vec![Part::Literal("foo.bar"), Part::Expr("<>"), Part::Expr("")]
        );
        assert_eq!(split("plain").unwrap(), vec![Part::Literal("plain")]);
    }

    #[test]
    fn unbalanced_is_an_error() {
        for p in ["a<b", "a>b", "<<a>", "a<b>>", ">"] {
            assert_eq!(split(p), Err(Unbalanced), "{p}");
        }
    }
}
