//! Which source lines may show a secret, decided from the text alone.
//!
//! Diagnostics print the line they point at, and the line can be anywhere:
//! in a document the parser gave up on (a duplicate key, an unterminated
//! quote, a tab), so no tree tells which field it belongs to. This reads the
//! text line by line, the way YAML's block structure nests by indentation,
//! and gives each line its key path. A line whose path goes through a
//! secret field (`runtimeEnvironment`, `runtimeFiles`, `buildArguments`,
//! `buildFiles`, or a near-miss spelling of one) shows its key only; a line
//! whose place cannot be told for sure (inside a flow collection or a
//! multi-line scalar, a tab in its indentation, an anchor aliased into a
//! secret field) is masked whole when it could be in a secret field.
//!
//! It errs on the side of masking: a line masked for nothing costs a
//! reader some context, a line shown wrongly leaks a secret.

use std::collections::HashSet;

use super::schema::{ENVELOPE_FIELDS, SENSITIVE_FIELDS};

/// How a line is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mask {
    /// As it is.
    Clear,
    /// Up to and including the key's `:` (a byte offset), then
    /// `(sensitive)`.
    Value(usize),
    /// Only its indentation, then `(sensitive)`.
    Whole,
}

impl Mask {
    /// `line` as shown under this mask.
    pub fn apply(self, line: &str) -> String {
        match self {
            Mask::Clear => line.to_string(),
            Mask::Value(colon) if colon < line.len() && line.is_char_boundary(colon + 1) => {
                format!("{} (sensitive)", &line[..=colon])
            }
            Mask::Value(_) | Mask::Whole => {
                let indent = line.len() - line.trim_start_matches([' ', '\t']).len();
                format!("{}(sensitive)", &line[..indent])
            }
        }
    }

    fn stronger(self, other: Mask) -> Mask {
        match (self, other) {
            (Mask::Whole, _) | (_, Mask::Whole) => Mask::Whole,
            (Mask::Value(a), _) => Mask::Value(a),
            (Mask::Clear, other) => other,
        }
    }
}

/// A line's mask, and where its key ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LineMask {
    pub mask: Mask,
    /// Byte offset of the `:` of the line's key, when it has one.
    pub colon: Option<usize>,
}

impl LineMask {
    /// The mask when the line is known to be in a secret field (a
    /// diagnostic says so): at least the value is hidden.
    pub fn secret(self) -> Mask {
        match (self.mask, self.colon) {
            (Mask::Clear, Some(colon)) => Mask::Value(colon),
            (Mask::Clear, None) => Mask::Whole,
            (mask, _) => mask,
        }
    }
}

/// The mask of every line of `text` (`lines()` order).
pub fn masks(text: &str) -> Vec<LineMask> {
    let lines: Vec<&str> = text.lines().collect();
    let mut scan = Scan {
        masks: vec![Mask::Clear; lines.len()],
        facts: vec![LineFacts::default(); lines.len()],
        ..Scan::default()
    };
    scan.run(&lines);
    scan.spread_through_anchors(&lines);
    scan.masks
        .into_iter()
        .zip(scan.facts)
        .map(|(mask, facts)| LineMask {
            mask,
            colon: facts.colon,
        })
        .collect()
}

/// Whether a key names a secret field, or nearly does: a misspelt
/// `runtimeEnviroment` is an unknown field, and its values are still
/// secrets.
pub fn sensitive_key(key: &str) -> bool {
    let folded: String = key
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_lowercase())
        .collect();
    if folded.len() < 6 {
        return false;
    }
    SENSITIVE_FIELDS.iter().any(|field| {
        let field = field.to_ascii_lowercase();
        folded == field
            || (folded.len().abs_diff(field.len()) <= 2
                && strsim::levenshtein(&folded, &field) <= 2)
    })
}

/// What one line holds, for the anchor pass.
#[derive(Debug, Clone, Default)]
struct LineFacts {
    /// Indentation (spaces) of the line's key or content.
    indent: usize,
    /// Anchors defined on the line, and whether the anchored value is a
    /// block below the line (nothing else follows the anchor).
    anchors: Vec<(String, bool)>,
    aliases: Vec<String>,
    /// Byte offset of the key's `:`, when the line is `key: ...`.
    colon: Option<usize>,
}

#[derive(Default)]
struct Scan {
    masks: Vec<Mask>,
    facts: Vec<LineFacts>,
    /// Open block mapping keys: (indent, is or nearly is a secret field).
    stack: Vec<(usize, bool)>,
}

/// Where the end of a line left the tokenizer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct Carry {
    flow_depth: usize,
    quote: Option<u8>,
}

impl Carry {
    fn open(self) -> bool {
        self.flow_depth > 0 || self.quote.is_some()
    }
}

impl Scan {
    fn run(&mut self, lines: &[&str]) {
        let mut i = 0;
        while i < lines.len() {
            i = self.line(lines, i);
        }
    }

    /// Whether an open key at an indentation less than `indent` is a secret
    /// field.
    fn context_sensitive(&self, indent: usize) -> bool {
        self.stack.iter().any(|&(at, s)| s && at < indent)
    }

    /// Classifies line `i` and any lines that continue it; returns the
    /// index of the next line to read.
    fn line(&mut self, lines: &[&str], i: usize) -> usize {
        let line = lines[i];
        let body = line.trim_start_matches(' ');
        let indent = line.len() - body.len();
        self.facts[i].indent = indent;
        if body.is_empty() {
            return i + 1;
        }
        if body.starts_with('#') {
            // A commented-out secret is still a secret.
            if self.context_sensitive(indent) || mentions_secret(body) {
                self.masks[i] = Mask::Whole;
            }
            return i + 1;
        }
        if indent == 0 && (is_marker(line, "---") || is_marker(line, "...")) {
            // A new document: nothing above is an ancestor any more.
            self.stack.clear();
            let rest = line[3..].trim_start();
            if rest.is_empty() || rest.starts_with('#') {
                return i + 1;
            }
            // `--- value`: the root is on this line.
            return self.content(lines, i, 3 + (line[3..].len() - rest.len()), indent);
        }
        if indent == 0 && body.starts_with('%') && self.stack.is_empty() {
            return i + 1;
        }
        if body.starts_with('\t') {
            // A tab in the indentation: YAML refuses it, and its depth
            // cannot be told. Masked whole inside any secret field.
            if self.context_sensitive(usize::MAX) || mentions_secret(line) {
                self.masks[i] = Mask::Whole;
            }
            // A secret field opened here stays open for the lines below;
            // nothing is closed by a line whose depth is unknown.
            let ws = line.len() - line.trim_start_matches([' ', '\t']).len();
            if key_end(line, ws).is_some_and(|(name, _)| sensitive_key(&name)) {
                self.stack.push((ws, true));
            }
            let mut carry = Carry::default();
            scan_tokens(line, 0, &mut carry, &mut self.facts[i]);
            return self.continuation(lines, i, carry, self.masks[i] != Mask::Clear);
        }
        self.content(lines, i, indent, indent)
    }

    /// The content of line `i` from byte `at` (after indentation or `---`).
    fn content(&mut self, lines: &[&str], i: usize, mut at: usize, indent: usize) -> usize {
        let line = lines[i];
        // Sequence entries: `- `, `- - `; the content's indentation is
        // where it starts.
        loop {
            let rest = &line[at..];
            if rest == "-" || rest.starts_with("- ") || rest.starts_with("-\t") {
                at += 1;
                at += line[at..].len() - line[at..].trim_start_matches([' ', '\t']).len();
            } else {
                break;
            }
        }
        let rest = &line[at..];
        if rest.is_empty() || rest.starts_with('#') {
            self.facts[i].indent = at;
            return i + 1;
        }
        let column = at;
        self.facts[i].indent = column;
        let key = key_end(line, at);
        // Properties before a key (`&a key:`) are not in manifests.
        let propertied = matches!(line.as_bytes()[at], b'&' | b'!');
        match key {
            Some((name, colon)) => self.key_line(lines, i, &name, colon, column, propertied),
            None => {
                // A scalar, a flow collection, a `? ` key: its place is the
                // enclosing key's. Not deeper than the last key, it is text
                // the parser refuses, whose place cannot be told: any open
                // secret field counts.
                let deeper = self.stack.last().is_none_or(|&(k, _)| k < column);
                let reach = if deeper { column } else { usize::MAX };
                let names_one = mentions_secret(rest);
                let sensitive = self.context_sensitive(reach) || names_one;
                if sensitive {
                    self.masks[i] = Mask::Whole;
                }
                let mut carry = Carry::default();
                if names_one && carry_free(rest) {
                    // Text naming a secret field opens one, whatever its
                    // syntax: the lines below may be its values.
                    self.stack.push((column, true));
                }
                scan_tokens(line, at, &mut carry, &mut self.facts[i]);
                if let Some(next) = self.block_scalar(lines, i, rest, indent, sensitive) {
                    return next;
                }
                self.continuation(lines, i, carry, sensitive)
            }
        }
    }

    /// Line `i` holds a key, `name`, at `column` with its colon at `colon`
    /// (`propertied`: an anchor or tag stands before it).
    fn key_line(
        &mut self,
        lines: &[&str],
        i: usize,
        name: &str,
        colon: usize,
        column: usize,
        propertied: bool,
    ) -> usize {
        let line = lines[i];
        let mut carry = Carry::default();
        // Shallower than the last key but level with no open one:
        // the parser refuses it, and its place cannot be told.
        // So is a key at the root that is not a manifest's own.
        let misplaced = (self.stack.last().is_some_and(|&(k, _)| k > column)
            && self.stack.iter().all(|&(k, _)| k != column))
            || (column == 0 && !ENVELOPE_FIELDS.contains(&name))
            || odd_key(name)
            || propertied;
        let any_open = self.context_sensitive(usize::MAX);
        while self.stack.last().is_some_and(|&(k, _)| k >= column) {
            self.stack.pop();
        }
        // A misplaced key under a secret field may be one of its
        // entries: it, and what is below it, stay secret.
        let secret = sensitive_key(name) || (misplaced && any_open);
        let sensitive = secret || self.context_sensitive(column);
        self.stack.push((column, secret));
        self.facts[i].colon = Some(colon);
        let value = &line[colon + 1..];
        scan_tokens(line, colon + 1, &mut carry, &mut self.facts[i]);
        let has_value = !value.trim().is_empty();
        if has_value && (sensitive || mentions_secret(value)) {
            self.masks[i] = Mask::Value(colon);
        }
        let region_sensitive = sensitive || mentions_secret(value);
        if let Some(next) = self.block_scalar(lines, i, value, column, sensitive) {
            return next;
        }
        self.continuation(lines, i, carry, region_sensitive)
    }

    /// After a `|` or `>` header, the lines indented deeper than `parent`
    /// (and blank lines) are the scalar's text.
    fn block_scalar(
        &mut self,
        lines: &[&str],
        i: usize,
        value: &str,
        parent: usize,
        sensitive: bool,
    ) -> Option<usize> {
        let header = strip_properties(value.trim_start());
        let header = header.split(" #").next().unwrap_or("").trim_end();
        let is_header = header.starts_with(['|', '>'])
            && header[1..]
                .chars()
                .all(|c| c == '-' || c == '+' || c.is_ascii_digit());
        if !is_header {
            return None;
        }
        let mut j = i + 1;
        while j < lines.len() {
            let l = lines[j];
            let content = l.trim_start_matches(' ');
            let blank = content.trim().is_empty();
            if !blank && l.len() - content.len() <= parent {
                break;
            }
            if sensitive && !blank {
                self.masks[j] = Mask::Whole;
            }
            j += 1;
        }
        Some(j)
    }

    /// Lines after `i` that continue an unclosed flow collection or quoted
    /// scalar. The parser cannot tell their key paths line by line: all of
    /// them, and line `i`, are masked when the region could hold a secret.
    fn continuation(
        &mut self,
        lines: &[&str],
        i: usize,
        mut carry: Carry,
        sensitive: bool,
    ) -> usize {
        if !carry.open() {
            return i + 1;
        }
        let mut j = i + 1;
        let mut mentions = false;
        while j < lines.len() && carry.open() {
            let mut facts = LineFacts {
                indent: lines[j].len() - lines[j].trim_start_matches(' ').len(),
                ..LineFacts::default()
            };
            scan_tokens(lines[j], 0, &mut carry, &mut facts);
            self.facts[j] = facts;
            mentions |= mentions_secret(lines[j]);
            j += 1;
        }
        if sensitive || mentions {
            self.masks[i] = self.masks[i].stronger(match self.facts[i].colon {
                Some(colon) => Mask::Value(colon),
                None => Mask::Whole,
            });
            for m in &mut self.masks[i + 1..j] {
                *m = Mask::Whole;
            }
        }
        j
    }

    /// An anchor whose alias is used in a masked line holds a secret too:
    /// its line (and block) is masked, and so on through chains of
    /// anchors.
    fn spread_through_anchors(&mut self, lines: &[&str]) {
        let mut secret: HashSet<String> = HashSet::new();
        loop {
            let before = secret.len();
            for (facts, mask) in self.facts.iter().zip(&self.masks) {
                if *mask != Mask::Clear {
                    secret.extend(facts.aliases.iter().cloned());
                }
            }
            if secret.len() == before && before > 0 {
                return;
            }
            if secret.is_empty() {
                return;
            }
            for i in 0..lines.len() {
                let block = match self.facts[i]
                    .anchors
                    .iter()
                    .find(|(name, _)| secret.contains(name))
                {
                    Some((_, block)) => *block,
                    None => continue,
                };
                let own = match self.facts[i].colon {
                    Some(colon) if !block => Mask::Value(colon),
                    Some(_) => Mask::Clear,
                    None => Mask::Whole,
                };
                self.masks[i] = self.masks[i].stronger(own);
                if block {
                    let parent = self.facts[i].indent;
                    for (l, mask) in lines[i + 1..].iter().zip(&mut self.masks[i + 1..]) {
                        let content = l.trim_start_matches(' ');
                        if content.trim().is_empty() {
                            continue;
                        }
                        if l.len() - content.len() <= parent {
                            break;
                        }
                        *mask = Mask::Whole;
                    }
                }
            }
        }
    }
}

fn is_marker(line: &str, marker: &str) -> bool {
    line.starts_with(marker)
        && line[marker.len()..]
            .chars()
            .next()
            .is_none_or(|c| c == ' ' || c == '\t')
}

/// `key:` at byte `at` of `line`: the key's text and the byte offset of its
/// `:`. Plain, single- and double-quoted keys; not `? ` keys or flow ones.
fn key_end(line: &str, at: usize) -> Option<(String, usize)> {
    let bytes = line.as_bytes();
    let mut i = at;
    // Properties before a key (`&a key:`, `!!str key:`).
    while i < bytes.len() && (bytes[i] == b'&' || bytes[i] == b'!') {
        while i < bytes.len() && bytes[i] != b' ' {
            i += 1;
        }
        while i < bytes.len() && bytes[i] == b' ' {
            i += 1;
        }
    }
    let start = i;
    match bytes.get(i)? {
        q @ (b'"' | b'\'') => {
            let q = *q;
            i += 1;
            while i < bytes.len() {
                if q == b'"' && bytes[i] == b'\\' {
                    i += 2;
                    continue;
                }
                if bytes[i] == q {
                    if q == b'\'' && bytes.get(i + 1) == Some(&b'\'') {
                        i += 2;
                        continue;
                    }
                    break;
                }
                i += 1;
            }
            let name = line.get(start + 1..i.min(line.len()))?.to_string();
            i += 1;
            while i < bytes.len() && (bytes[i] == b' ' || bytes[i] == b'\t') {
                i += 1;
            }
            (bytes.get(i) == Some(&b':') && matches!(bytes.get(i + 1), None | Some(b' ' | b'\t')))
                .then_some((name, i))
        }
        // Indicators that cannot start a plain key.
        b'[' | b']' | b'{' | b'}' | b',' | b'?' | b'*' | b'|' | b'>' | b'#' | b'%' | b'@'
        | b'`' => None,
        // `- `, `? ` and `: ` after properties: not a key's start.
        b'-' | b':' if matches!(bytes.get(i + 1), None | Some(b' ' | b'\t')) => None,
        _ => {
            while i < bytes.len() {
                if bytes[i] == b':' && matches!(bytes.get(i + 1), None | Some(b' ' | b'\t')) {
                    // `: value` has no key to place it by.
                    let name = line[start..i].trim_end();
                    return (!name.is_empty()).then(|| (name.to_string(), i));
                }
                if bytes[i] == b'#' && i > start && matches!(bytes[i - 1], b' ' | b'\t') {
                    return None;
                }
                i += 1;
            }
            None
        }
    }
}

/// A key no manifest has (field names, variable names, file paths): a
/// sign that the line is not where it seems.
fn odd_key(name: &str) -> bool {
    !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '/' | '<'))
}

/// Skips a value's anchor and tag (`&a !!str |` -> `|`).
fn strip_properties(mut value: &str) -> &str {
    while value.starts_with(['&', '!']) {
        value = value
            .split_once([' ', '\t'])
            .map_or("", |(_, rest)| rest.trim_start());
    }
    value
}

/// Follows quotes and flow brackets through `line` from byte `at`, noting
/// anchors and aliases outside quotes. Comments end the line.
fn scan_tokens(line: &str, at: usize, carry: &mut Carry, facts: &mut LineFacts) {
    let bytes = line.as_bytes();
    let mut i = at;
    while i < bytes.len() {
        let b = bytes[i];
        if let Some(q) = carry.quote {
            if q == b'"' && b == b'\\' {
                i += 2;
                continue;
            }
            if b == q {
                if q == b'\'' && bytes.get(i + 1) == Some(&b'\'') {
                    i += 2;
                    continue;
                }
                carry.quote = None;
            }
            i += 1;
            continue;
        }
        let after_space = i == 0 || matches!(bytes[i - 1], b' ' | b'\t' | b'[' | b'{' | b',');
        match b {
            b'"' | b'\'' if after_space || carry.flow_depth > 0 => carry.quote = Some(b),
            b'[' | b'{' => carry.flow_depth += 1,
            b']' | b'}' => carry.flow_depth = carry.flow_depth.saturating_sub(1),
            b'#' if i == 0 || matches!(bytes[i - 1], b' ' | b'\t') => return,
            b'&' | b'*' if after_space => {
                let end = line[i + 1..]
                    .find([' ', '\t', ',', '[', ']', '{', '}'])
                    .map_or(line.len(), |e| i + 1 + e);
                let name = line[i + 1..end].to_string();
                if !name.is_empty() {
                    if b == b'&' {
                        let block = line[end..].trim().is_empty();
                        facts.anchors.push((name, block));
                    } else {
                        facts.aliases.push(name);
                    }
                }
                i = end;
                continue;
            }
            _ => {}
        }
        i += 1;
    }
}

/// Whether `text` opens no flow collection or quote (its continuation
/// lines are handled as a region instead).
fn carry_free(text: &str) -> bool {
    let mut carry = Carry::default();
    scan_tokens(text, 0, &mut carry, &mut LineFacts::default());
    !carry.open()
}

/// Whether some word of `text` names (or nearly names) a secret field.
fn mentions_secret(text: &str) -> bool {
    text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-'))
        .any(sensitive_key)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shown(text: &str) -> Vec<String> {
        text.lines()
            .zip(masks(text))
            .map(|(line, mask)| mask.mask.apply(line))
            .collect()
    }

    #[test]
    fn block_values_under_a_secret_field_keep_their_keys() {
        let text = "kind: CronJob\nspec:\n  name: A\n  runtimeEnvironment:\n    DB_PASSWORD: \"hunter2\"\n    MODE: batch\n  schedule: \"0 3 * * *\"\n";
        assert_eq!(
            shown(text),
            [
                "kind: CronJob",
                "spec:",
                "  name: A",
                "  runtimeEnvironment:",
                "    DB_PASSWORD: (sensitive)",
                "    MODE: (sensitive)",
                "  schedule: \"0 3 * * *\"",
            ]
        );
    }

    #[test]
    fn flow_collections_and_multi_line_scalars_are_masked_whole() {
        let text = "spec:\n  runtimeFiles: {\n    /a: {data: c2VjcmV0}\n  }\n  buildArguments:\n    TOKEN: \"abc\n      def\"\n    KEY: |\n      -----BEGIN\n      xyz\n  name: ok\n";
        assert_eq!(
            shown(text),
            [
                "spec:",
                "  runtimeFiles: (sensitive)",
                "    (sensitive)",
                "  (sensitive)",
                "  buildArguments:",
                "    TOKEN: (sensitive)",
                "      (sensitive)",
                "    KEY: (sensitive)",
                "      (sensitive)",
                "      (sensitive)",
                "  name: ok",
            ]
        );
    }

    #[test]
    fn a_secret_inside_a_one_line_flow_mapping_masks_the_value() {
        let text = "spec: {name: A, runtimeEnvironment: {DB: hunter2}}\n";
        assert_eq!(shown(text), ["spec: (sensitive)"]);
        let text = "- {buildFiles: {x: y}}\n";
        assert_eq!(shown(text), ["(sensitive)"]);
    }

    #[test]
    fn tab_indentation_and_misspelt_fields_are_masked() {
        let text =
            "spec:\n  runtimeEnvironment:\n\tDB: hunter2\n  runtimeEnviroment:\n    DB: hunter3\n";
        assert_eq!(
            shown(text),
            [
                "spec:",
                "  runtimeEnvironment:",
                "\t(sensitive)",
                "  runtimeEnviroment:",
                "    DB: (sensitive)",
            ]
        );
    }

    #[test]
    fn an_anchor_aliased_into_a_secret_field_is_masked() {
        let text = "x-env: &env {DB: hunter2}\nx-block: &blk\n  K: hunter3\nspec:\n  runtimeEnvironment: *env\n  buildArguments:\n    <<: *blk\n  name: ok\n";
        assert_eq!(
            shown(text),
            [
                "x-env: (sensitive)",
                "x-block: &blk",
                "  (sensitive)",
                "spec:",
                "  runtimeEnvironment: (sensitive)",
                "  buildArguments:",
                "    <<: (sensitive)",
                "  name: ok",
            ]
        );
    }

    #[test]
    fn documents_reset_the_key_path() {
        let text = "runtimeEnvironment:\n  A: b\n---\nA: b\n";
        assert_eq!(
            shown(text),
            ["runtimeEnvironment:", "  A: (sensitive)", "---", "A: b"]
        );
    }

    #[test]
    fn sequences_under_a_secret_field() {
        let text = "spec:\n  buildFiles:\n    - secret-one\n    - key: v\n  healthChecks:\n    - port: 80\n";
        assert_eq!(
            shown(text),
            [
                "spec:",
                "  buildFiles:",
                "    (sensitive)",
                "    - key: (sensitive)",
                "  healthChecks:",
                "    - port: 80",
            ]
        );
    }
}
