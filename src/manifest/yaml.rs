//! A YAML reader that remembers where every key and value came from.
//!
//! `serde_yaml` throws positions away once a value is built, and every
//! diagnostic nfcron prints has to point at a line and column. So manifests
//! are read from the event stream of `saphyr-parser` into a small tree of
//! [`Node`]s that carry a [`Span`] each, resolving scalars with the YAML 1.2
//! core schema (`yes`/`no` stay strings, as they do for the API's JSON).
//!
//! Hostile input is bounded here: nesting deeper than [`MAX_DEPTH`], alias
//! expansion beyond [`MAX_ALIAS_NODES`] nodes ("billion laughs") or beyond
//! [`alias_byte_budget`] bytes (one large scalar aliased many times), and
//! more than [`MAX_DOCUMENTS`] documents in a file are errors, not stack
//! overflows or memory blow-ups. A syntax error (or a limit) keeps every
//! document completed before it.

use std::collections::HashMap;

use super::schema::SENSITIVE_FIELDS;

use saphyr_parser::{Event, Parser, ScalarStyle, ScanError};

/// Collections nested deeper than this are refused. Real manifests nest
/// about eight levels deep.
pub const MAX_DEPTH: usize = 64;
/// Nodes that alias expansion may create in one file.
pub const MAX_ALIAS_NODES: usize = 100_000;
/// Documents one file may hold (empty ones count: each costs memory).
pub const MAX_DOCUMENTS: usize = 10_000;
/// Alias expansion may copy at most this many times the file's size in
/// scalar and key bytes, and never less than [`MIN_ALIAS_BYTES`].
pub const ALIAS_BYTES_PER_FILE_BYTE: usize = 10;
/// The alias byte budget of a small file, so that a short manifest may
/// still share a block with a few documents.
pub const MIN_ALIAS_BYTES: usize = 64 * 1024;

/// How many bytes alias expansion may copy in a file of `file_bytes`.
pub fn alias_byte_budget(file_bytes: usize) -> usize {
    file_bytes
        .saturating_mul(ALIAS_BYTES_PER_FILE_BYTE)
        .max(MIN_ALIAS_BYTES)
}

/// A 1-based line and column (columns count characters, not bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Pos {
    pub line: u32,
    pub column: u32,
}

/// Where a node sits in its file: its start, and how many characters of its
/// first line it covers (for the caret under it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Span {
    pub start: Pos,
    pub width: u32,
}

impl Span {
    /// Line 1, column 1: for problems of a whole file.
    pub fn file_start() -> Span {
        Span {
            start: Pos { line: 1, column: 1 },
            width: 1,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub span: Span,
    pub value: Value,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    Map(Vec<(Key, Node)>),
}

/// A mapping key. Keys are always strings in a manifest; a scalar key of
/// another type keeps its source text.
#[derive(Debug, Clone, PartialEq)]
pub struct Key {
    pub name: String,
    pub span: Span,
}

impl Value {
    /// The name of the value's type as a manifest author would say it.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "boolean",
            Value::Int(_) => "integer",
            Value::Float(_) => "number",
            Value::Str(_) => "string",
            Value::Seq(_) => "array",
            Value::Map(_) => "object",
        }
    }
}

impl Node {
    /// The value under `key`, when this node is a mapping that has it.
    pub fn get(&self, key: &str) -> Option<&Node> {
        match &self.value {
            Value::Map(entries) => entries.iter().find(|(k, _)| k.name == key).map(|(_, v)| v),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }
}

/// One YAML document of a file.
#[derive(Debug, Clone)]
pub struct Document {
    /// Where the document starts (its `---` or first content).
    pub start: Pos,
    pub root: Node,
}

impl Document {
    /// A document with nothing in it (only comments, or `~`) is ignored.
    pub fn is_empty(&self) -> bool {
        matches!(self.root.value, Value::Null)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct YamlError {
    pub pos: Pos,
    pub message: String,
}

/// The documents of a file, and the error that stopped reading it, if any.
#[derive(Debug, Default)]
pub struct Parsed {
    pub documents: Vec<Document>,
    pub error: Option<YamlError>,
}

/// Reads every document of `text`.
pub fn parse(text: &str) -> Parsed {
    let mut builder = Builder {
        alias_byte_budget: alias_byte_budget(text.len()),
        ..Builder::default()
    };
    let mut parsed = Parsed::default();
    let mut parser = Parser::new_from_str(text);
    while let Some(next) = parser.next_event() {
        match next {
            Ok((event, span)) => match builder.event(event, span) {
                Ok(Some(doc)) => parsed.documents.push(doc),
                Ok(None) => {}
                Err(error) => {
                    parsed.error = Some(error);
                    break;
                }
            },
            Err(error) => {
                parsed.error = Some(scan_error(&error));
                break;
            }
        }
    }
    parsed
}

fn scan_error(error: &ScanError) -> YamlError {
    YamlError {
        pos: pos(error.marker()),
        message: error.info().to_string(),
    }
}

fn pos(marker: &saphyr_parser::Marker) -> Pos {
    Pos {
        line: marker.line() as u32,
        column: marker.col() as u32 + 1,
    }
}

fn span(span: saphyr_parser::Span) -> Span {
    let start = pos(&span.start);
    let end = pos(&span.end);
    let width = if end.line == start.line && end.column > start.column {
        end.column - start.column
    } else {
        1
    };
    Span { start, width }
}

/// A collection under construction.
enum Open {
    Seq(Span, usize, Vec<Node>),
    /// A mapping, the index of its keys (entry positions: a duplicate is
    /// found in constant time, so a file of many keys stays linear), and,
    /// when a key has been read, the key awaiting its value.
    Map(
        Span,
        usize,
        Vec<(Key, Node)>,
        HashMap<String, usize>,
        Option<Key>,
    ),
}

/// An anchored node and what one copy of it costs.
struct Anchored {
    node: Node,
    nodes: usize,
    bytes: usize,
    /// Anchored inside a secret field: an alias may copy it only into
    /// another secret field, never into one that is shown.
    secret: bool,
}

#[derive(Default)]
struct Builder {
    stack: Vec<Open>,
    anchors: HashMap<usize, Anchored>,
    doc_start: Pos,
    root: Option<Node>,
    documents: usize,
    alias_nodes: usize,
    alias_bytes: usize,
    alias_byte_budget: usize,
}

impl Builder {
    fn event(
        &mut self,
        event: Event<'_>,
        at: saphyr_parser::Span,
    ) -> Result<Option<Document>, YamlError> {
        let here = span(at);
        match event {
            Event::StreamStart | Event::StreamEnd | Event::Nothing => Ok(None),
            Event::DocumentStart(_) => self.start_document(here),
            Event::DocumentEnd => {
                let root = self.root.take().unwrap_or(Node {
                    span: Span {
                        start: self.doc_start,
                        width: 1,
                    },
                    value: Value::Null,
                });
                Ok(Some(Document {
                    start: self.doc_start,
                    root,
                }))
            }
            Event::Alias(id) => {
                let node = self.alias(id, here)?;
                self.push(node, here.start)
            }
            Event::Scalar(text, style, anchor, tag) => {
                let tag = tag.map(|t| t.suffix.clone());
                let value = resolve_scalar(&text, style, tag.as_deref());
                let node = Node { span: here, value };
                if anchor > 0 {
                    self.anchor(anchor, &node);
                }
                self.push(node, here.start)
            }
            Event::SequenceStart(anchor, _) => {
                self.open(here.start)?;
                self.stack.push(Open::Seq(here, anchor, Vec::new()));
                Ok(None)
            }
            Event::MappingStart(anchor, _) => {
                self.open(here.start)?;
                self.stack
                    .push(Open::Map(here, anchor, Vec::new(), HashMap::new(), None));
                Ok(None)
            }
            Event::SequenceEnd | Event::MappingEnd => self.close(here),
        }
    }

    fn start_document(&mut self, here: Span) -> Result<Option<Document>, YamlError> {
        self.documents += 1;
        if self.documents > MAX_DOCUMENTS {
            return Err(YamlError {
                pos: here.start,
                message: format!("more than {MAX_DOCUMENTS} documents in one file; split it"),
            });
        }
        self.doc_start = here.start;
        self.root = None;
        self.anchors.clear();
        Ok(None)
    }

    /// A copy of anchor `id`'s node, once the copy is known to stay in a
    /// secret field (if the anchor was in one) and within the alias limits.
    fn alias(&mut self, id: usize, here: Span) -> Result<Node, YamlError> {
        let Some(anchored) = self.anchors.get(&id) else {
            return Err(YamlError {
                pos: here.start,
                message: "alias refers to an unknown anchor".into(),
            });
        };
        if anchored.secret && !self.in_secret_field() {
            return Err(YamlError {
                pos: here.start,
                message: "this alias copies a value out of a secret field (runtimeEnvironment, runtimeFiles, buildArguments, buildFiles) into one that is shown and sent in clear; write the value out instead".into(),
            });
        }
        // Checked before the copy is made: the limit bounds memory.
        self.alias_nodes = self.alias_nodes.saturating_add(anchored.nodes);
        self.alias_bytes = self.alias_bytes.saturating_add(anchored.bytes);
        if self.alias_nodes > MAX_ALIAS_NODES {
            return Err(YamlError {
                pos: here.start,
                message: format!(
                    "aliases expand to more than {MAX_ALIAS_NODES} nodes (an alias bomb?)"
                ),
            });
        }
        if self.alias_bytes > self.alias_byte_budget {
            return Err(YamlError {
                pos: here.start,
                message: format!(
                    "aliases expand to more than {} bytes, {ALIAS_BYTES_PER_FILE_BYTE} times the file's size (an alias bomb?)",
                    self.alias_byte_budget
                ),
            });
        }
        Ok(anchored.node.clone())
    }

    /// The end of a sequence or mapping: the collection becomes a node of
    /// its parent.
    fn close(&mut self, here: Span) -> Result<Option<Document>, YamlError> {
        let (node, anchor) = match self.stack.pop() {
            Some(Open::Seq(span, anchor, items)) => (
                Node {
                    span,
                    value: Value::Seq(items),
                },
                anchor,
            ),
            Some(Open::Map(span, anchor, entries, _, _)) => (
                Node {
                    span,
                    value: Value::Map(entries),
                },
                anchor,
            ),
            None => return Ok(None),
        };
        if anchor > 0 {
            self.anchor(anchor, &node);
        }
        self.push(node, here.start)
    }

    fn anchor(&mut self, id: usize, node: &Node) {
        let (nodes, bytes) = measure(node);
        let secret = self.in_secret_field();
        self.anchors.insert(
            id,
            Anchored {
                node: node.clone(),
                nodes,
                bytes,
                secret,
            },
        );
    }

    /// Whether the node being built sits under a secret field's key
    /// (`runtimeEnvironment`, `runtimeFiles`, `buildArguments`,
    /// `buildFiles`), at any depth.
    fn in_secret_field(&self) -> bool {
        self.stack.iter().any(|open| match open {
            Open::Map(_, _, _, _, Some(key)) => SENSITIVE_FIELDS.contains(&key.name.as_str()),
            _ => false,
        })
    }

    fn open(&self, at: Pos) -> Result<(), YamlError> {
        if self.stack.len() >= MAX_DEPTH {
            return Err(YamlError {
                pos: at,
                message: format!("nesting deeper than {MAX_DEPTH} levels"),
            });
        }
        Ok(())
    }

    /// Places a finished node in the collection being built, or as the root.
    fn push(&mut self, node: Node, at: Pos) -> Result<Option<Document>, YamlError> {
        match self.stack.last_mut() {
            None => self.root = Some(node),
            Some(Open::Seq(_, _, items)) => items.push(node),
            Some(Open::Map(_, _, entries, index, pending)) => match pending.take() {
                Some(key) => {
                    if let Some((first, _)) = index.get(&key.name).map(|&i| &entries[i]) {
                        return Err(YamlError {
                            pos: key.span.start,
                            message: format!(
                                "duplicate key `{}` (first at line {})",
                                key.name, first.span.start.line
                            ),
                        });
                    }
                    index.insert(key.name.clone(), entries.len());
                    entries.push((key, node));
                }
                None => {
                    let name = match node.value {
                        Value::Str(s) => s,
                        Value::Null => "null".into(),
                        Value::Bool(b) => b.to_string(),
                        Value::Int(i) => i.to_string(),
                        Value::Float(f) => f.to_string(),
                        Value::Seq(_) | Value::Map(_) => {
                            return Err(YamlError {
                                pos: at,
                                message: "a mapping key must be a plain string".into(),
                            })
                        }
                    };
                    *pending = Some(Key {
                        name,
                        span: node.span,
                    });
                }
            },
        }
        Ok(None)
    }
}

/// Nodes in `node`, and the bytes of its keys and string scalars plus a
/// word for each node: what a copy of it costs.
fn measure(node: &Node) -> (usize, usize) {
    let mut nodes = 0usize;
    let mut bytes = 0usize;
    let mut todo = vec![node];
    while let Some(n) = todo.pop() {
        nodes += 1;
        bytes += std::mem::size_of::<usize>();
        match &n.value {
            Value::Str(s) => bytes += s.len(),
            Value::Seq(items) => todo.extend(items),
            Value::Map(entries) => {
                for (k, v) in entries {
                    bytes += k.name.len();
                    todo.push(v);
                }
            }
            _ => {}
        }
    }
    (nodes, bytes)
}

/// The YAML 1.2 core schema: what a plain scalar means.
fn resolve_scalar(text: &str, style: ScalarStyle, tag: Option<&str>) -> Value {
    match tag {
        Some("str") => return Value::Str(text.to_string()),
        Some("null") => return Value::Null,
        _ => {}
    }
    if style != ScalarStyle::Plain {
        return Value::Str(text.to_string());
    }
    match text {
        "" | "~" | "null" | "Null" | "NULL" => return Value::Null,
        "true" | "True" | "TRUE" => return Value::Bool(true),
        "false" | "False" | "FALSE" => return Value::Bool(false),
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => {
            return Value::Float(f64::INFINITY)
        }
        "-.inf" | "-.Inf" | "-.INF" => return Value::Float(f64::NEG_INFINITY),
        ".nan" | ".NaN" | ".NAN" => return Value::Float(f64::NAN),
        _ => {}
    }
    if let Some(v) = parse_int(text) {
        return Value::Int(v);
    }
    if is_float(text) {
        if let Ok(f) = text.parse::<f64>() {
            return Value::Float(f);
        }
    }
    Value::Str(text.to_string())
}

fn parse_int(text: &str) -> Option<i64> {
    if let Some(hex) = text.strip_prefix("0x") {
        return i64::from_str_radix(hex, 16).ok();
    }
    if let Some(oct) = text.strip_prefix("0o") {
        return i64::from_str_radix(oct, 8).ok();
    }
    let digits = text.strip_prefix(['-', '+']).unwrap_or(text);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// `[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?`, and integers too
/// large for i64.
fn is_float(text: &str) -> bool {
    let t = text.strip_prefix(['-', '+']).unwrap_or(text);
    let (mantissa, exponent) = match t.find(['e', 'E']) {
        Some(i) => (&t[..i], Some(&t[i + 1..])),
        None => (t, None),
    };
    let (int, frac) = match mantissa.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (mantissa, None),
    };
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    let mantissa_ok = match frac {
        Some(f) => digits(int) && digits(f) && !(int.is_empty() && f.is_empty()),
        None => !int.is_empty() && digits(int),
    };
    let exponent_ok = match exponent {
        Some(e) => {
            let e = e.strip_prefix(['-', '+']).unwrap_or(e);
            !e.is_empty() && digits(e)
        }
        None => true,
    };
    mantissa_ok && exponent_ok
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root(text: &str) -> Node {
        let parsed = parse(text);
        assert_eq!(parsed.error, None);
        parsed
            .documents
            .into_iter()
            .next()
            .expect("one document")
            .root
    }

    #[test]
    fn keeps_positions_of_keys_and_values() {
        let node = root("a: 1\nspec:\n  name: \"Job\"\n");
        let Value::Map(entries) = &node.value else {
            panic!("map")
        };
        let (key, value) = &entries[1];
        assert_eq!(key.name, "spec");
        assert_eq!(key.span.start, Pos { line: 2, column: 1 });
        let name = value.get("name").expect("name");
        assert_eq!(name.span.start, Pos { line: 3, column: 9 });
        assert_eq!(name.value, Value::Str("Job".into()));
    }

    #[test]
    fn resolves_core_schema_scalars() {
        let node = root("a: 1\nb: '1'\nc: yes\nd: true\ne: 1.5\nf: ~\ng: 0x10\nh: 1e3\n");
        let get = |k| node.get(k).expect(k).value.clone();
        assert_eq!(get("a"), Value::Int(1));
        assert_eq!(get("b"), Value::Str("1".into()));
        assert_eq!(get("c"), Value::Str("yes".into()));
        assert_eq!(get("d"), Value::Bool(true));
        assert_eq!(get("e"), Value::Float(1.5));
        assert_eq!(get("f"), Value::Null);
        assert_eq!(get("g"), Value::Int(16));
        assert_eq!(get("h"), Value::Float(1000.0));
    }

    #[test]
    fn keeps_documents_before_a_syntax_error() {
        let parsed = parse("a: 1\n---\nb: [1, 2\n");
        assert_eq!(parsed.documents.len(), 1);
        let error = parsed.error.expect("error");
        assert_eq!(error.pos.line, 4);
    }

    #[test]
    fn duplicate_keys_are_errors() {
        let parsed = parse("a: 1\nb: 2\na: 3\n");
        let error = parsed.error.expect("error");
        assert_eq!(error.pos, Pos { line: 3, column: 1 });
        assert!(
            error.message.contains("duplicate key `a`"),
            "{}",
            error.message
        );
    }

    #[test]
    fn a_duplicate_among_many_keys_is_found_and_named() {
        let mut text = String::from("m:\n");
        for i in 0..5_000 {
            text.push_str(&format!("  k{i}: 1\n"));
        }
        text.push_str("  k42: 2\n");
        let error = parse(&text).error.expect("duplicate");
        assert!(
            error
                .message
                .contains("duplicate key `k42` (first at line 44)"),
            "{}",
            error.message
        );
    }

    #[test]
    fn an_alias_may_not_copy_a_secret_into_a_shown_field() {
        let text =
            "spec:\n  runtimeEnvironment:\n    DB_PASSWORD: &a \"hunter2\"\n  description: *a\n";
        let error = parse(text).error.expect("refused");
        assert!(
            error.message.contains("out of a secret field"),
            "{}",
            error.message
        );
        assert!(!error.message.contains("hunter2"));
        // Into another secret field it is fine.
        let text =
            "spec:\n  runtimeEnvironment:\n    A: &a \"hunter2\"\n  buildArguments:\n    B: *a\n";
        assert!(parse(text).error.is_none());
    }

    #[test]
    fn alias_bomb_is_refused() {
        let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..9 {
            let prev = i - 1;
            text.push_str(&format!(
                "a{i}: &a{i} [*a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}]\n"
            ));
        }
        let error = parse(&text).error.expect("refused");
        assert!(error.message.contains("alias bomb"), "{}", error.message);
    }

    #[test]
    fn large_scalar_aliased_many_times_is_refused_by_bytes() {
        let big = "x".repeat(200_000);
        let mut text = format!("a: &big {big}\nb: [");
        for _ in 0..60_000 {
            text.push_str("*big,");
        }
        text.push_str("]\n");
        let error = parse(&text).error.expect("refused");
        assert!(error.message.contains("bytes"), "{}", error.message);
        // A block shared by a few documents is fine.
        let text = "x: &env {A: \"1\", B: \"2\"}\ny: *env\nz: *env\n";
        assert_eq!(parse(text).error, None);
    }

    #[test]
    fn too_many_documents_are_refused() {
        let text = "--- ~\n".repeat(MAX_DOCUMENTS + 5);
        let parsed = parse(&text);
        let error = parsed.error.expect("refused");
        assert!(error.message.contains("documents"), "{}", error.message);
        assert_eq!(parsed.documents.len(), MAX_DOCUMENTS);
        assert_eq!(error.pos.line as usize, MAX_DOCUMENTS + 1);
        assert_eq!(parse(&"--- ~\n".repeat(MAX_DOCUMENTS)).error, None);
    }

    #[test]
    fn deep_nesting_is_refused() {
        let text = format!("{}{}", "[".repeat(100), "]".repeat(100));
        let error = parse(&text).error.expect("refused");
        assert!(
            error.message.contains("nesting deeper than 64"),
            "{}",
            error.message
        );
        // Far deeper input stops in the scanner, which has its own limit.
        let text = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert!(parse(&text).error.is_some());
    }

    #[test]
    fn aliases_expand_to_their_anchor() {
        let node = root("base: &b {x: 1}\nother: *b\n");
        assert_eq!(
            node.get("other").expect("other").get("x").expect("x").value,
            Value::Int(1)
        );
    }
}
