//! Compose-style variable references in string values: `${VAR}`,
//! `${VAR:-default}` (unset or empty), `${VAR-default}` (unset only), and
//! `$$` for a literal `$`. A `$` followed by anything else stays as it is.
//! A default is expanded like the shell does, only when it is used: it may
//! hold `$$` and references of its own (`${A:-${B:-x}}`).
//!
//! The lookup is a parameter so that tests and the planner never touch the
//! process environment. Errors name variables, never values.

/// What interpolating one string found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Interpolated {
    /// The string had no reference; it is used as written.
    Literal(String),
    /// Every reference resolved; the value came (at least partly) from the
    /// environment, so it must never be shown.
    Resolved(String),
    /// These variables are unset and have no default: the value is unknown.
    Missing(Vec<String>),
    /// A `${` without a valid name and closing `}`.
    Malformed(String),
}

/// ```
/// use nfcron::manifest::interpolate::{interpolate, Interpolated};
/// let env = |name: &str| (name == "TAG").then(|| "v2".to_string());
/// assert_eq!(interpolate("app:${TAG}", &env), Interpolated::Resolved("app:v2".into()));
/// assert_eq!(interpolate("${DB:-sqlite}", &env), Interpolated::Resolved("sqlite".into()));
/// assert_eq!(interpolate("${DB}", &env), Interpolated::Missing(vec!["DB".into()]));
/// ```
pub fn interpolate(text: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Interpolated {
    if !text.contains('$') {
        return Interpolated::Literal(text.to_string());
    }
    let mut found = Found::default();
    match expand(text, lookup, &mut found) {
        Err(why) => Interpolated::Malformed(why),
        Ok(_) if !found.missing.is_empty() => {
            let mut seen = std::collections::HashSet::new();
            found.missing.retain(|name| seen.insert(name.clone()));
            Interpolated::Missing(found.missing)
        }
        Ok(out) if found.referenced => Interpolated::Resolved(out),
        Ok(out) => Interpolated::Literal(out),
    }
}

#[derive(Default)]
struct Found {
    missing: Vec<String>,
    referenced: bool,
}

/// Defaults nest at most this deep (`${A:-${B:-${C}}}` is 3).
const MAX_NESTING: usize = 16;

/// Expands `text`; a default is itself expanded (shell semantics: only
/// when it is used), so `${A:-${B}}` falls back to `B`, and `$$` in it is a
/// literal `$`.
fn expand(
    text: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    found: &mut Found,
) -> Result<String, String> {
    expand_at(text, lookup, found, 0)
}

fn expand_at(
    text: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    found: &mut Found,
    depth: usize,
) -> Result<String, String> {
    if depth > MAX_NESTING {
        return Err(format!(
            "defaults nest more than {MAX_NESTING} `${{...}}` deep"
        ));
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(body) = after.strip_prefix('{') {
            let Some(end) = closing_brace(body) else {
                return Err("`${` has no closing `}`".into());
            };
            let inner = &body[..end];
            let Some((name, default)) = split_default(inner) else {
                return Err(not_a_reference(inner));
            };
            found.referenced = true;
            let value = lookup(name);
            let use_default = match (&value, default) {
                (Some(v), Some((true, _))) => v.is_empty(),
                (Some(_), _) => false,
                (None, Some(_)) => true,
                (None, None) => {
                    found.missing.push(name.to_string());
                    false
                }
            };
            match (use_default, default, value) {
                (true, Some((_, d)), _) => out.push_str(&expand_at(d, lookup, found, depth + 1)?),
                (false, _, Some(v)) => out.push_str(&v),
                _ => {}
            }
            rest = &body[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// Where the `}` closing a `${` is in `body` (the text after the `${`):
/// references nested in a default are skipped whole, and `$$` is a literal.
fn closing_brace(body: &str) -> Option<usize> {
    let bytes = body.as_bytes();
    let mut depth = 0usize;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'$' if bytes.get(i + 1) == Some(&b'$') => i += 1,
            b'$' if bytes.get(i + 1) == Some(&b'{') => {
                depth += 1;
                i += 1;
            }
            b'}' if depth == 0 => return Some(i),
            b'}' => depth -= 1,
            _ => {}
        }
        i += 1;
    }
    None
}

/// `NAME:-default` -> (NAME, Some((true, default))); `NAME-default` ->
/// (NAME, Some((false, default))); `None` for anything else. The name ends
/// at the first character that cannot be in one, so a `-` inside a nested
/// default is not taken for this reference's.
fn split_default(inner: &str) -> Option<(&str, Option<(bool, &str)>)> {
    let end = inner
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(inner.len());
    let (name, tail) = inner.split_at(end);
    if !valid_name(name) {
        return None;
    }
    if tail.is_empty() {
        Some((name, None))
    } else if let Some(d) = tail.strip_prefix(":-") {
        Some((name, Some((true, d))))
    } else {
        tail.strip_prefix('-').map(|d| (name, Some((false, d))))
    }
}

/// The message for `${inner}` that is not a reference. It shows at most the
/// name: the rest could be a secret's text.
fn not_a_reference(inner: &str) -> String {
    let end = inner
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(inner.len());
    let name = &inner[..end];
    let more = if end < inner.len() { "…" } else { "" };
    if valid_name(name) {
        format!(
            "`${{{name}{more}}}` is not a form nfcron knows: use `${{NAME}}`, `${{NAME:-default}}` or `${{NAME-default}}`"
        )
    } else {
        let name = if name.len() > 40 { "" } else { name };
        format!(
            "`${{{name}{more}}}` is not a variable reference: names are letters, digits and `_`, not starting with a digit"
        )
    }
}

fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "TAG" => Some("v2".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    fn run(text: &str) -> Interpolated {
        interpolate(text, &env)
    }

    #[test]
    fn forms() {
        assert_eq!(run("plain"), Interpolated::Literal("plain".into()));
        assert_eq!(run("img:${TAG}"), Interpolated::Resolved("img:v2".into()));
        assert_eq!(
            run("${NOPE:-latest}"),
            Interpolated::Resolved("latest".into())
        );
        assert_eq!(run("${EMPTY:-x}"), Interpolated::Resolved("x".into()));
        assert_eq!(run("${EMPTY-x}"), Interpolated::Resolved("".into()));
        assert_eq!(run("${NOPE-x}"), Interpolated::Resolved("x".into()));
        assert_eq!(
            run("cost $$5 and $HOME"),
            Interpolated::Literal("cost $5 and $HOME".into())
        );
        assert_eq!(
            run("${A}${B}"),
            Interpolated::Missing(vec!["A".into(), "B".into()])
        );
        assert!(matches!(run("${oops"), Interpolated::Malformed(_)));
        assert!(matches!(run("${1X}"), Interpolated::Malformed(_)));
        assert!(matches!(run("${A:?x}"), Interpolated::Malformed(_)));
    }

    #[test]
    fn dollar_dollar_in_a_default_is_a_literal_dollar() {
        assert_eq!(run("${NOPE:-x$$y}"), Interpolated::Resolved("x$y".into()));
        assert_eq!(run("${NOPE-$$}"), Interpolated::Resolved("$".into()));
        // An escaped `${` in a default is text, and does not nest.
        assert_eq!(run("${NOPE:-a$${B}"), Interpolated::Resolved("a${B".into()));
    }

    #[test]
    fn a_reference_in_a_default_is_resolved() {
        assert_eq!(run("${NOPE:-${TAG}}"), Interpolated::Resolved("v2".into()));
        assert_eq!(
            run("img:${NOPE:-${ALSO:-x}}-${TAG}"),
            Interpolated::Resolved("img:x-v2".into())
        );
        // `-` inside the nested default is not this reference's `-`.
        assert_eq!(run("${NOPE-${X:-y}}"), Interpolated::Resolved("y".into()));
        // A default that is not used is not looked at: its variable is
        // not missing.
        assert_eq!(run("${TAG:-${GONE}}"), Interpolated::Resolved("v2".into()));
        assert_eq!(
            run("${NOPE:-${GONE}}"),
            Interpolated::Missing(vec!["GONE".into()])
        );
        assert!(matches!(run("${NOPE:-${1}}"), Interpolated::Malformed(_)));
        let deep = format!("{}x{}", "${NOPE:-".repeat(40), "}".repeat(40));
        assert!(matches!(run(&deep), Interpolated::Malformed(_)));
    }
}
