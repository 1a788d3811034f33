//! Reads the TypeScript type aliases of the official client's declarations
//! (the extract in tests/data/northflank-js-client/) into plain data, and
//! checks JSON values against them. Only what those declarations use:
//! object literals with `'quoted'?:` members, unions, string literals,
//! `string`, `number`, `boolean`, `any`, `null` and `T[]`.
#![allow(dead_code)]

use std::collections::BTreeMap;

use serde_json::Value;

#[derive(Debug, Clone, PartialEq)]
pub enum Ty {
    Object(Vec<Member>),
    Union(Vec<Ty>),
    Literal(String),
    String,
    Number,
    Boolean,
    Any,
    Null,
    Array(Box<Ty>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Member {
    pub name: String,
    pub optional: bool,
    pub ty: Ty,
}

/// Every `type Name = ...;` in `source`, by name.
pub fn parse(source: &str) -> BTreeMap<String, Ty> {
    let tokens = tokenize(source);
    let mut p = Parser { tokens, at: 0 };
    let mut types = BTreeMap::new();
    while p.at < p.tokens.len() {
        if p.peek() == Some("type") {
            p.at += 1;
            let name = p.next().to_string();
            p.expect("=");
            let ty = p.union();
            p.expect(";");
            types.insert(name, ty);
        } else {
            p.at += 1;
        }
    }
    types
}

fn tokenize(source: &str) -> Vec<String> {
    let mut out = Vec::new();
    let chars: Vec<char> = source.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c == '/' && chars.get(i + 1) == Some(&'*') {
            while i + 1 < chars.len() && !(chars[i] == '*' && chars[i + 1] == '/') {
                i += 1;
            }
            i += 2;
        } else if c == '/' && chars.get(i + 1) == Some(&'/') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '\'' {
            let start = i;
            i += 1;
            while chars[i] != '\'' {
                i += 1;
            }
            i += 1;
            out.push(chars[start..i].iter().collect());
        } else if c.is_alphanumeric() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            out.push(chars[start..i].iter().collect());
        } else {
            out.push(c.to_string());
            i += 1;
        }
    }
    out
}

struct Parser {
    tokens: Vec<String>,
    at: usize,
}

impl Parser {
    fn peek(&self) -> Option<&str> {
        self.tokens.get(self.at).map(String::as_str)
    }

    fn next(&mut self) -> &str {
        self.at += 1;
        &self.tokens[self.at - 1]
    }

    fn expect(&mut self, token: &str) {
        let got = self.next().to_string();
        assert_eq!(got, token, "at token {}", self.at);
    }

    fn union(&mut self) -> Ty {
        let mut alternatives = vec![self.term()];
        while self.peek() == Some("|") {
            self.at += 1;
            alternatives.push(self.term());
        }
        match alternatives.len() {
            1 => alternatives.remove(0),
            _ => Ty::Union(alternatives),
        }
    }

    fn term(&mut self) -> Ty {
        let token = self.next().to_string();
        let mut ty = match token.as_str() {
            "{" => self.members(),
            "string" => Ty::String,
            "number" => Ty::Number,
            "boolean" => Ty::Boolean,
            "any" => Ty::Any,
            "null" => Ty::Null,
            t if t.starts_with('\'') => Ty::Literal(t.trim_matches('\'').to_string()),
            t => panic!("unexpected token {t}"),
        };
        while self.peek() == Some("[") {
            self.expect("[");
            self.expect("]");
            ty = Ty::Array(Box::new(ty));
        }
        ty
    }

    fn members(&mut self) -> Ty {
        let mut members = Vec::new();
        while self.peek() != Some("}") {
            let name = self.next().trim_matches('\'').to_string();
            let optional = self.peek() == Some("?");
            if optional {
                self.at += 1;
            }
            self.expect(":");
            let ty = self.union();
            self.expect(";");
            members.push(Member { name, optional, ty });
        }
        self.expect("}");
        Ty::Object(members)
    }
}

/// The alternatives of a union (a single type is its own).
pub fn alternatives(ty: &Ty) -> Vec<&Ty> {
    match ty {
        Ty::Union(all) => all.iter().collect(),
        other => vec![other],
    }
}

/// Where `value` does not fit `ty`, one line per problem: a field the
/// type lacks, a required one missing, a wrong type or enum value.
pub fn check(value: &Value, ty: &Ty, at: &str, out: &mut Vec<String>) {
    match (ty, value) {
        (Ty::Any, _) => {}
        (Ty::Null, Value::Null) => {}
        (Ty::String, Value::String(_)) => {}
        (Ty::Number, Value::Number(_)) => {}
        (Ty::Boolean, Value::Bool(_)) => {}
        (Ty::Literal(l), Value::String(s)) if l == s => {}
        (Ty::Array(item), Value::Array(items)) => {
            for (i, v) in items.iter().enumerate() {
                check(v, item, &format!("{at}[{i}]"), out);
            }
        }
        (Ty::Object(members), Value::Object(map)) => {
            for key in map.keys() {
                if !members.iter().any(|m| &m.name == key) {
                    out.push(format!("{at}/{key}: not in the type"));
                }
            }
            for m in members {
                match map.get(&m.name) {
                    Some(v) => check(v, &m.ty, &format!("{at}/{}", m.name), out),
                    None if !m.optional => out.push(format!("{at}/{}: required, missing", m.name)),
                    None => {}
                }
            }
        }
        (Ty::Union(all), _) => {
            // The alternative that fits best: the fewest problems.
            let best = all
                .iter()
                .map(|t| {
                    let mut problems = Vec::new();
                    check(value, t, at, &mut problems);
                    problems
                })
                .min_by_key(Vec::len)
                .unwrap_or_default();
            out.extend(best);
        }
        (ty, value) => out.push(format!("{at}: {value} is not {ty:?}")),
    }
}
