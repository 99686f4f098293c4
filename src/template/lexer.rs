//! Splits template source into text and `{{ … }}` actions (with `{{-`/`-}}` trimming and
//! comments) and tokenises each action.

use super::TemplateError;

#[derive(Debug, Clone, PartialEq)]
pub enum Tok {
    /// `.` alone.
    Dot,
    /// `.Name`, a field or method of what precedes it.
    Field(String),
    /// `$` (the root data) or `$name`.
    Var(String),
    Ident(String),
    Str(String),
    Int(i64),
    Float(f64),
    LParen,
    RParen,
    Pipe,
}

/// A token and whether whitespace came before it (`.A.B` chains only without it).
#[derive(Debug, Clone, PartialEq)]
pub struct Token {
    pub tok: Tok,
    pub spaced: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Item {
    Text(String),
    Action(Vec<Token>),
}

pub fn split(src: &str) -> Result<Vec<Item>, TemplateError> {
    let mut items = Vec::new();
    let mut rest = src;
    let mut trim_next_text = false;
    while !rest.is_empty() {
        let open = rest.find("{{");
        let (text, after) = match open {
            Some(i) => (
                rest.get(..i).unwrap_or_default(),
                rest.get(i + 2..).unwrap_or_default(),
            ),
            None => (rest, ""),
        };
        let mut text = if trim_next_text {
            text.trim_start()
        } else {
            text
        };
        let trim_left =
            after.starts_with("- ") || after.starts_with("-\t") || after.starts_with("-\n");
        if trim_left {
            text = text.trim_end();
        }
        if !text.is_empty() {
            items.push(Item::Text(text.to_string()));
        }
        if open.is_none() {
            break;
        }
        let body_start = if trim_left {
            after.get(1..).unwrap_or_default()
        } else {
            after
        };
        let close = body_start
            .find("}}")
            .ok_or(TemplateError::Syntax("unclosed action"))?;
        let mut body = body_start.get(..close).unwrap_or_default();
        trim_next_text = body.ends_with(" -") || body.ends_with("\t-") || body.ends_with("\n-");
        if trim_next_text {
            body = body.get(..body.len() - 1).unwrap_or_default();
        }
        rest = body_start.get(close + 2..).unwrap_or_default();
        let trimmed = body.trim();
        if trimmed.starts_with("/*") {
            if !trimmed.ends_with("*/") {
                return Err(TemplateError::Syntax("unclosed comment"));
            }
            continue;
        }
        items.push(Item::Action(tokenize(body)?));
    }
    Ok(items)
}

fn ident_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

fn take_while(chars: &[char], mut i: usize, f: impl Fn(char) -> bool) -> usize {
    while chars.get(i).is_some_and(|&c| f(c)) {
        i += 1;
    }
    i
}

fn collect(chars: &[char], from: usize, to: usize) -> String {
    chars.get(from..to).unwrap_or_default().iter().collect()
}

pub fn tokenize(body: &str) -> Result<Vec<Token>, TemplateError> {
    let chars: Vec<char> = body.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    let mut spaced = true;
    while let Some(&c) = chars.get(i) {
        if c.is_whitespace() {
            spaced = true;
            i += 1;
            continue;
        }
        let tok = match c {
            '(' => {
                i += 1;
                Tok::LParen
            }
            ')' => {
                i += 1;
                Tok::RParen
            }
            '|' => {
                i += 1;
                Tok::Pipe
            }
            '.' if chars
                .get(i + 1)
                .is_some_and(|&c| ident_char(c) && !c.is_ascii_digit()) =>
            {
                let end = take_while(&chars, i + 1, ident_char);
                let name = collect(&chars, i + 1, end);
                i = end;
                Tok::Field(name)
            }
            '.' if !chars.get(i + 1).is_some_and(|c| c.is_ascii_digit()) => {
                i += 1;
                Tok::Dot
            }
            '$' => {
                let end = take_while(&chars, i + 1, ident_char);
                let name = collect(&chars, i + 1, end);
                i = end;
                Tok::Var(name)
            }
            '"' => {
                let (s, end) = quoted(&chars, i + 1)?;
                i = end;
                Tok::Str(s)
            }
            '`' => {
                let end = (i + 1..chars.len())
                    .find(|&j| chars.get(j) == Some(&'`'))
                    .ok_or(TemplateError::Syntax("unterminated raw string"))?;
                let s = collect(&chars, i + 1, end);
                i = end + 1;
                Tok::Str(s)
            }
            c if c.is_ascii_digit() || c == '-' || c == '+' || c == '.' => {
                let end = take_while(&chars, i + 1, |c| {
                    c.is_ascii_alphanumeric() || c == '.' || c == '_'
                });
                let text = collect(&chars, i, end);
                i = end;
                number(&text)?
            }
            c if ident_char(c) => {
                let end = take_while(&chars, i, ident_char);
                let name = collect(&chars, i, end);
                i = end;
                Tok::Ident(name)
            }
            _ => return Err(TemplateError::Syntax("unexpected character in action")),
        };
        tokens.push(Token { tok, spaced });
        spaced = false;
    }
    Ok(tokens)
}

fn number(text: &str) -> Result<Tok, TemplateError> {
    let clean: String = text.chars().filter(|&c| c != '_').collect();
    if let Ok(i) = clean.parse::<i64>() {
        return Ok(Tok::Int(i));
    }
    let (neg, digits) = match clean.strip_prefix('-') {
        Some(d) => (true, d),
        None => (false, clean.trim_start_matches('+')),
    };
    if let Some(hex) = digits
        .strip_prefix("0x")
        .or_else(|| digits.strip_prefix("0X"))
    {
        if let Ok(v) = i64::from_str_radix(hex, 16) {
            return Ok(Tok::Int(if neg { -v } else { v }));
        }
    }
    clean
        .parse::<f64>()
        .map(Tok::Float)
        .map_err(|_| TemplateError::Syntax("bad number"))
}

fn quoted(chars: &[char], mut i: usize) -> Result<(String, usize), TemplateError> {
    let mut s = String::new();
    loop {
        match chars.get(i) {
            None => return Err(TemplateError::Syntax("unterminated string")),
            Some('"') => return Ok((s, i + 1)),
            Some('\\') => {
                let c = chars
                    .get(i + 1)
                    .ok_or(TemplateError::Syntax("unterminated string"))?;
                s.push(match c {
                    'n' => '\n',
                    't' => '\t',
                    'r' => '\r',
                    '0' => '\0',
                    other => *other,
                });
                i += 2;
            }
            Some(&c) => {
                s.push(c);
                i += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trims_and_comments() {
        let items = split("a  {{- .X -}}  b{{/* c */}}d").unwrap();
        assert_eq!(items.len(), 4);
        assert_eq!(items[0], Item::Text("a".into()));
        assert_eq!(items[2], Item::Text("b".into()));
        assert_eq!(items[3], Item::Text("d".into()));
    }

    #[test]
    fn chains_are_unspaced_fields() {
        let t = tokenize(r#".Extra.a "x\"y" -1 (print)"#).unwrap();
        let toks: Vec<Tok> = t.iter().map(|t| t.tok.clone()).collect();
        assert_eq!(
            toks,
            vec![
                Tok::Field("Extra".into()),
                Tok::Field("a".into()),
                Tok::Str("x\"y".into()),
                Tok::Int(-1),
                Tok::LParen,
                Tok::Ident("print".into()),
                Tok::RParen
            ]
        );
        assert!(!t[1].spaced);
        assert!(t[2].spaced);
    }
}
