//! Compose-style variable references in string values: `${VAR}`,
//! `${VAR:-default}` (unset or empty), `${VAR-default}` (unset only), and
//! `$$` for a literal `$`. A `$` followed by anything else stays as it is.
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
    let mut out = String::with_capacity(text.len());
    let mut missing = Vec::new();
    let mut referenced = false;
    let mut rest = text;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(body) = after.strip_prefix('{') {
            let Some(end) = body.find('}') else {
                return Interpolated::Malformed("`${` has no closing `}`".into());
            };
            let inner = &body[..end];
            let (name, default) = split_default(inner);
            if !valid_name(name) {
                return Interpolated::Malformed(format!(
                    "`${{{}}}` is not a variable reference: names are letters, digits and `_`, not starting with a digit",
                    if name.len() > 40 { "…" } else { name }
                ));
            }
            referenced = true;
            match (lookup(name), default) {
                (Some(v), Some((true, d))) if v.is_empty() => out.push_str(d),
                (Some(v), _) => out.push_str(&v),
                (None, Some((_, d))) => out.push_str(d),
                (None, None) => missing.push(name.to_string()),
            }
            rest = &body[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    if !missing.is_empty() {
        missing.dedup();
        Interpolated::Missing(missing)
    } else if referenced {
        Interpolated::Resolved(out)
    } else {
        Interpolated::Literal(out)
    }
}

/// `NAME:-default` -> (NAME, Some((true, default))); `NAME-default` ->
/// (NAME, Some((false, default))).
fn split_default(inner: &str) -> (&str, Option<(bool, &str)>) {
    if let Some(i) = inner.find(":-") {
        return (&inner[..i], Some((true, &inner[i + 2..])));
    }
    if let Some(i) = inner.find('-') {
        return (&inner[..i], Some((false, &inner[i + 1..])));
    }
    (inner, None)
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
    }
}
