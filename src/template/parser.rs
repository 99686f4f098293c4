//! Builds the template tree from lexed items: pipelines, commands, and the `if`, `with` and
//! `range` blocks. Function names resolve here, so an unknown function is a config error.

use super::funcs::Func;
use super::lexer::{Item, Tok, Token};
use super::TemplateError;

#[derive(Debug, Clone)]
pub enum Node {
    Text(String),
    Output(Pipe),
    If(Pipe, Vec<Node>, Vec<Node>),
    With(Pipe, Vec<Node>, Vec<Node>),
    Range(Pipe, Vec<Node>, Vec<Node>),
}

/// Commands joined by `|`; each command's result is the last argument of the next.
#[derive(Debug, Clone)]
pub struct Pipe(pub Vec<Cmd>);

/// Space-separated operands: a function or method and its arguments, or a single value.
#[derive(Debug, Clone)]
pub struct Cmd(pub Vec<Operand>);

#[derive(Debug, Clone)]
pub struct Operand {
    pub term: Term,
    /// `.A.B` after the term.
    pub fields: Vec<String>,
}

#[derive(Debug, Clone)]
pub enum Term {
    Dot,
    Root,
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    Nil,
    Func(Func),
    Paren(Pipe),
}

enum Block {
    If,
    With,
    Range,
}

pub fn parse(items: Vec<Item>) -> Result<Vec<Node>, TemplateError> {
    let mut iter = items.into_iter();
    let (nodes, end) = parse_list(&mut iter)?;
    match end {
        Terminator::Eof => Ok(nodes),
        _ => Err(TemplateError::Syntax("unexpected {{end}} or {{else}}")),
    }
}

enum Terminator {
    Eof,
    End,
    Else(Vec<Token>),
}

fn parse_list(
    iter: &mut impl Iterator<Item = Item>,
) -> Result<(Vec<Node>, Terminator), TemplateError> {
    let mut nodes = Vec::new();
    while let Some(item) = iter.next() {
        let tokens = match item {
            Item::Text(t) => {
                nodes.push(Node::Text(t));
                continue;
            }
            Item::Action(tokens) => tokens,
        };
        let keyword = match tokens.first().map(|t| &t.tok) {
            Some(Tok::Ident(k)) => k.as_str(),
            _ => "",
        };
        let rest = tokens.get(1..).unwrap_or_default();
        let block = match keyword {
            "end" if rest.is_empty() => return Ok((nodes, Terminator::End)),
            "else" => return Ok((nodes, Terminator::Else(rest.to_vec()))),
            "if" => Block::If,
            "with" => Block::With,
            "range" => Block::Range,
            "define" | "template" | "block" | "break" | "continue" => {
                return Err(TemplateError::Unsupported(keyword.to_string()))
            }
            _ => {
                nodes.push(Node::Output(parse_pipe(&tokens)?));
                continue;
            }
        };
        nodes.push(parse_block(block, rest, iter)?);
    }
    Ok((nodes, Terminator::Eof))
}

fn parse_block(
    block: Block,
    head: &[Token],
    iter: &mut impl Iterator<Item = Item>,
) -> Result<Node, TemplateError> {
    if matches!(head.first().map(|t| &t.tok), Some(Tok::Var(v)) if !v.is_empty()) {
        return Err(TemplateError::Unsupported("variables".into()));
    }
    let pipe = parse_pipe(head)?;
    let (body, end) = parse_list(iter)?;
    let els = match end {
        Terminator::Eof => return Err(TemplateError::Syntax("missing {{end}}")),
        Terminator::End => Vec::new(),
        Terminator::Else(rest) if rest.is_empty() => {
            let (els, end) = parse_list(iter)?;
            match end {
                Terminator::End => els,
                _ => return Err(TemplateError::Syntax("missing {{end}} after {{else}}")),
            }
        }
        Terminator::Else(rest) => {
            // `else if …` / `else with …` chain into a nested block sharing this {{end}}.
            let nested = match rest.first().map(|t| &t.tok) {
                Some(Tok::Ident(k)) if k == "if" => Block::If,
                Some(Tok::Ident(k)) if k == "with" => Block::With,
                _ => return Err(TemplateError::Syntax("unexpected tokens after else")),
            };
            vec![parse_block(
                nested,
                rest.get(1..).unwrap_or_default(),
                iter,
            )?]
        }
    };
    Ok(match block {
        Block::If => Node::If(pipe, body, els),
        Block::With => Node::With(pipe, body, els),
        Block::Range => Node::Range(pipe, body, els),
    })
}

fn parse_pipe(tokens: &[Token]) -> Result<Pipe, TemplateError> {
    if tokens.is_empty() {
        return Err(TemplateError::Syntax("missing value"));
    }
    let mut cmds = Vec::new();
    let mut pos = 0;
    loop {
        let mut operands = Vec::new();
        while let Some(t) = tokens.get(pos) {
            if t.tok == Tok::Pipe {
                break;
            }
            let (operand, next) = parse_operand(tokens, pos)?;
            operands.push(operand);
            pos = next;
        }
        if operands.is_empty() {
            return Err(TemplateError::Syntax("missing command in pipeline"));
        }
        cmds.push(Cmd(operands));
        if tokens.get(pos).is_none() {
            break;
        }
        pos += 1;
    }
    Ok(Pipe(cmds))
}

fn parse_operand(tokens: &[Token], pos: usize) -> Result<(Operand, usize), TemplateError> {
    let token = tokens
        .get(pos)
        .ok_or(TemplateError::Syntax("missing operand"))?;
    let mut fields = Vec::new();
    let mut next = pos + 1;
    let term = match &token.tok {
        Tok::Dot => Term::Dot,
        Tok::Field(name) => {
            fields.push(name.clone());
            Term::Dot
        }
        Tok::Var(v) if v.is_empty() => Term::Root,
        Tok::Var(_) => return Err(TemplateError::Unsupported("variables".into())),
        Tok::Str(s) => Term::Str(s.clone()),
        Tok::Int(i) => Term::Int(*i),
        Tok::Float(f) => Term::Float(*f),
        Tok::Ident(name) => match name.as_str() {
            "true" => Term::Bool(true),
            "false" => Term::Bool(false),
            "nil" => Term::Nil,
            _ => Term::Func(Func::from_name(name)?),
        },
        Tok::LParen => {
            let mut depth = 1;
            let mut end = pos + 1;
            while depth > 0 {
                match tokens.get(end).map(|t| &t.tok) {
                    None => return Err(TemplateError::Syntax("unclosed (")),
                    Some(Tok::LParen) => depth += 1,
                    Some(Tok::RParen) => depth -= 1,
                    _ => {}
                }
                end += 1;
            }
            next = end;
            Term::Paren(parse_pipe(
                tokens.get(pos + 1..end - 1).unwrap_or_default(),
            )?)
        }
        Tok::RParen => return Err(TemplateError::Syntax("unexpected )")),
        Tok::Pipe => return Err(TemplateError::Syntax("unexpected |")),
    };
    while let Some(Token {
        tok: Tok::Field(name),
        spaced: false,
    }) = tokens.get(next)
    {
        fields.push(name.clone());
        next += 1;
    }
    Ok((Operand { term, fields }, next))
}
