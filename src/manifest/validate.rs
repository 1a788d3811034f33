//! Checks one YAML tree against the [`schema`](super::schema) and, in the
//! same walk, builds the JSON body to send, with `${VAR}` references
//! resolved.
//!
//! Every problem becomes a [`Diagnostic`]; the walk never stops early. A
//! message may quote a value only when it was written literally in the file
//! and is not a secret: values from the environment and sensitive fields are
//! never formatted into a message.

use serde_json::{Map as JsonMap, Number, Value as Json};

use super::cron;
use super::diagnostic::{Code, Diagnostic, Severity};
use super::interpolate::{interpolate, Interpolated};
use super::schema::{
    Alternative, Field, IntRule, Kind, MapRule, ObjectRule, Schema, StrRule, OFFICIAL_CLIENT,
};
use super::yaml::{Key, Node, Span, Value};

/// Looks a variable up (the process environment, or a test's table).
pub type Lookup<'a> = &'a (dyn Fn(&str) -> Option<String> + Sync);

pub struct Checker<'a> {
    lookup: Lookup<'a>,
    require_env: bool,
    /// Fields the schema does not know (and that are no misspelling of one
    /// it knows) are warned about and kept, not refused.
    allow_unknown: bool,
    pub diagnostics: Vec<Diagnostic>,
    /// Variables referenced without a value or default.
    pub missing_env: Vec<String>,
}

impl<'a> Checker<'a> {
    pub fn new(lookup: Lookup<'a>, require_env: bool) -> Self {
        Checker {
            lookup,
            require_env,
            allow_unknown: false,
            diagnostics: Vec::new(),
            missing_env: Vec::new(),
        }
    }

    pub fn allowing_unknown_fields(mut self, allow: bool) -> Self {
        self.allow_unknown = allow;
        self
    }

    fn fork(&self) -> Checker<'a> {
        Checker::new(self.lookup, self.require_env).allowing_unknown_fields(self.allow_unknown)
    }

    pub fn errors(&self) -> usize {
        self.diagnostics.iter().filter(|d| d.is_error()).count()
    }

    /// Reports an error found outside the schema's walk.
    pub fn error(&mut self, code: Code, span: Span, path: &str, message: String) {
        self.report(code, span, path, false, message);
    }

    fn report(&mut self, code: Code, span: Span, path: &str, sensitive: bool, message: String) {
        let mut d = Diagnostic::error(code, span, path, message);
        d.sensitive = sensitive;
        self.diagnostics.push(d);
    }

    /// Checks `node` against `schema`. `anchor` is the span of the key that
    /// holds `node`: missing fields of an object are reported there.
    pub fn check(
        &mut self,
        node: &Node,
        schema: &Schema,
        path: &str,
        anchor: Span,
        sensitive: bool,
    ) -> Json {
        match &schema.kind {
            Kind::Str(rule) => self.string(node, rule, path, sensitive),
            Kind::Int(rule) => self.integer(node, rule, path, sensitive),
            Kind::Number => match node.value {
                Value::Int(i) => Json::from(i),
                Value::Float(f) => Number::from_f64(f).map(Json::Number).unwrap_or_else(|| {
                    self.report(
                        Code::Type,
                        node.span,
                        path,
                        sensitive,
                        "expected a finite number".into(),
                    );
                    Json::Null
                }),
                _ => self.wrong_type(node, "a number", path, sensitive),
            },
            Kind::Bool => match node.value {
                Value::Bool(b) => Json::Bool(b),
                _ => self.wrong_type(node, "a boolean (true or false)", path, sensitive),
            },
            Kind::Object(rule) => self.object(node, rule, path, anchor, sensitive),
            Kind::Map(rule) => self.map(node, rule, path, sensitive),
            Kind::Array(rule) => match &node.value {
                Value::Seq(nodes) => {
                    if let Some(max) = rule.max_items.filter(|max| nodes.len() > *max) {
                        let message =
                            format!("has {} items; the API accepts at most {max}", nodes.len());
                        self.report(Code::Length, node.span, path, sensitive, message);
                    }
                    Json::Array(
                        nodes
                            .iter()
                            .enumerate()
                            .map(|(i, item)| {
                                let path = format!("{path}[{i}]");
                                self.check(item, &rule.items, &path, item.span, sensitive)
                            })
                            .collect(),
                    )
                }
                _ => self.wrong_type(node, "an array", path, sensitive),
            },
            Kind::OneOf(alternatives) => self.one_of(node, alternatives, path, anchor, sensitive),
            Kind::StrOrObject => match &node.value {
                Value::Str(_) | Value::Map(_) => self.free(node, path, sensitive),
                _ => self.wrong_type(node, "a string or an object", path, sensitive),
            },
            Kind::Nullable(inner) => match node.value {
                Value::Null => Json::Null,
                _ => self.check(node, inner, path, anchor, sensitive),
            },
        }
    }

    fn wrong_type(&mut self, node: &Node, expected: &str, path: &str, sensitive: bool) -> Json {
        let hint = match (
            &node.value,
            expected.starts_with("an integer") || expected.starts_with("a number"),
        ) {
            (Value::Str(s), true) if s.trim().parse::<f64>().is_ok() => "; remove the quotes",
            (Value::Str(s), false)
                if expected.starts_with("a boolean") && matches!(s.as_str(), "true" | "false") =>
            {
                "; remove the quotes"
            }
            (Value::Int(_) | Value::Float(_) | Value::Bool(_), false)
                if expected.starts_with("a string") =>
            {
                "; quote the value"
            }
            _ => "",
        };
        let message = format!(
            "expected {expected}, found {}{hint}",
            node.value.type_name()
        );
        self.report(Code::Type, node.span, path, sensitive, message);
        Json::Null
    }

    /// Resolves `${VAR}` references; `None` when the value is unknown.
    fn resolve(
        &mut self,
        node: &Node,
        text: &str,
        path: &str,
        sensitive: bool,
    ) -> (Option<String>, bool) {
        match interpolate(text, self.lookup) {
            Interpolated::Literal(s) => (Some(s), true),
            Interpolated::Resolved(s) => (Some(s), false),
            Interpolated::Missing(names) => {
                for name in names {
                    let mut d = Diagnostic::error(
                        Code::EnvMissing,
                        node.span,
                        path,
                        format!("environment variable `{name}` is not set and has no default"),
                    );
                    d.sensitive = sensitive;
                    if !self.require_env {
                        d.severity = Severity::Warning;
                    }
                    self.diagnostics.push(d);
                    self.missing_env.push(name);
                }
                (None, false)
            }
            Interpolated::Malformed(why) => {
                self.report(Code::EnvMissing, node.span, path, sensitive, why);
                (None, false)
            }
        }
    }

    fn string(&mut self, node: &Node, rule: &StrRule, path: &str, sensitive: bool) -> Json {
        let Value::Str(text) = &node.value else {
            return self.wrong_type(node, "a string", path, sensitive);
        };
        let (value, literal) = self.resolve(node, text, path, sensitive);
        let Some(value) = value else {
            // Unknown until the variable is set: send what was written.
            return Json::String(text.clone());
        };
        let shown = |v: &str| -> String {
            if literal && !sensitive {
                format!("`{}` ", truncate(v, 60))
            } else {
                String::new()
            }
        };
        let len = value.chars().count();
        match (rule.min_len, rule.max_len) {
            (Some(min), Some(max)) if len < min || len > max => {
                let bounds = if min == max {
                    format!("exactly {min}")
                } else {
                    format!("{min} to {max}")
                };
                self.report(
                    Code::Length,
                    node.span,
                    path,
                    sensitive,
                    format!("must be {bounds} characters long, not {len}"),
                );
            }
            (Some(min), None) if len < min => {
                self.report(
                    Code::Length,
                    node.span,
                    path,
                    sensitive,
                    format!("must be at least {min} characters long, not {len}"),
                );
            }
            (None, Some(max)) if len > max => {
                self.report(
                    Code::Length,
                    node.span,
                    path,
                    sensitive,
                    format!("must be at most {max} characters long, not {len}"),
                );
            }
            _ => {}
        }
        if !rule.one_of.is_empty() && !rule.one_of.contains(&value.as_str()) {
            let hint = match rule.one_of.iter().find(|v| v.eq_ignore_ascii_case(&value)) {
                Some(v) if literal && !sensitive => format!("; did you mean `{v}`?"),
                _ => String::new(),
            };
            let message = format!("{}is not one of {}{hint}", shown(&value), list(rule.one_of));
            self.report(Code::Enum, node.span, path, sensitive, message);
        }
        if rule.cron {
            // One verdict: the API's pattern, Kubernetes' parser, no `TZ`.
            for problem in cron::judge(&value).problems {
                let message = problem.message(literal && !sensitive);
                self.report(problem.code(), node.span, path, sensitive, message);
            }
        } else if let Some(pattern) = &rule.pattern {
            if !pattern.regex.is_match(&value) {
                let hint = pattern.hint.map(|h| format!(" ({h})")).unwrap_or_default();
                let message = format!(
                    "{}does not match the pattern {}{hint}",
                    shown(&value),
                    pattern.source
                );
                self.report(Code::Pattern, node.span, path, sensitive, message);
            }
        }
        Json::String(value)
    }

    fn integer(&mut self, node: &Node, rule: &IntRule, path: &str, sensitive: bool) -> Json {
        let n = match node.value {
            Value::Int(n) => n,
            Value::Float(f) if f.fract() == 0.0 && f.is_finite() => {
                self.report(
                    Code::Type,
                    node.span,
                    path,
                    sensitive,
                    format!("expected an integer, found {f:?}; drop the `.0`"),
                );
                return Json::Null;
            }
            _ => return self.wrong_type(node, "an integer", path, sensitive),
        };
        let below = rule.min.is_some_and(|min| n < min);
        let above = rule.max.is_some_and(|max| n > max);
        if below || above {
            let message = match (rule.min, rule.max) {
                (Some(min), Some(max)) => format!("{n} is outside {min}-{max}"),
                (Some(min), None) => format!("{n} is less than the minimum {min}"),
                (None, Some(max)) => format!("{n} is more than the maximum {max}"),
                (None, None) => unreachable!("a bound was crossed"),
            };
            self.report(Code::Range, node.span, path, sensitive, message);
        } else if !rule.one_of.is_empty() && !rule.one_of.contains(&n) {
            let values: Vec<String> = rule.one_of.iter().map(|v| v.to_string()).collect();
            self.report(
                Code::Enum,
                node.span,
                path,
                sensitive,
                format!("{n} is not one of {}", values.join(", ")),
            );
        }
        Json::from(n)
    }

    fn object(
        &mut self,
        node: &Node,
        rule: &ObjectRule,
        path: &str,
        anchor: Span,
        sensitive: bool,
    ) -> Json {
        let Value::Map(entries) = &node.value else {
            return self.wrong_type(node, "an object", path, sensitive);
        };
        let mut out = JsonMap::new();
        for (key, value) in entries {
            let child = join(path, &key.name);
            match rule.field(&key.name) {
                Some(field) => {
                    let v = self.check(
                        value,
                        &field.schema,
                        &child,
                        key.span,
                        sensitive || field.sensitive,
                    );
                    out.insert(key.name.clone(), v);
                }
                None => {
                    if let Some(v) = self.unknown(key, value, rule, &child, sensitive) {
                        out.insert(key.name.clone(), v);
                    }
                }
            }
        }
        for field in rule.fields.iter().filter(|f| f.required) {
            if node.get(field.name).is_none() {
                let message = format!("missing required field `{}`", field.name);
                self.report(
                    Code::Required,
                    anchor,
                    &join(path, field.name),
                    sensitive,
                    message,
                );
            }
        }
        for c in &rule.conditionals {
            let Some(when) = node.get(c.when) else {
                continue;
            };
            let Some(value) = when.as_str() else { continue };
            if !c.is.contains(&value) {
                continue;
            }
            for required in c.require.iter().filter(|r| node.get(r).is_none()) {
                let message = format!("`{required}` is required when `{}` is `{value}`", c.when);
                self.report(
                    Code::Conditional,
                    when.span,
                    &join(path, required),
                    sensitive,
                    message,
                );
            }
        }
        Json::Object(out)
    }

    /// A key `rule` does not list. A misspelling of a known field is an
    /// error whatever the options; any other unknown field is an error
    /// that says it may be newer than this nfcron, or, when allowed, a
    /// warning, and its value is kept as written.
    fn unknown(
        &mut self,
        key: &Key,
        value: &Node,
        rule: &ObjectRule,
        path: &str,
        sensitive: bool,
    ) -> Option<Json> {
        let names: Vec<&str> = rule.fields.iter().map(|f| f.name).collect();
        if suggest(&key.name, &names).is_some() || names.is_empty() {
            let message = unknown_field(&key.name, &names);
            self.report(Code::UnknownField, key.span, path, sensitive, message);
            return None;
        }
        if !self.allow_unknown {
            let message = format!(
                "{}; if the API added it after this nfcron (schema of {OFFICIAL_CLIENT}), upgrade nfcron, or pass --allow-unknown-fields (NFCRON_ALLOW_UNKNOWN_FIELDS=true) to send it as written",
                unknown_field(&key.name, &names)
            );
            self.report(Code::UnknownField, key.span, path, sensitive, message);
            return None;
        }
        let mut d = Diagnostic::error(
            Code::UnknownField,
            key.span,
            path,
            format!(
                "unknown field `{}` is sent as written, unchecked (--allow-unknown-fields)",
                key.name
            ),
        );
        d.severity = Severity::Warning;
        d.sensitive = sensitive;
        self.diagnostics.push(d);
        Some(self.free(value, path, sensitive))
    }

    fn map(&mut self, node: &Node, rule: &MapRule, path: &str, sensitive: bool) -> Json {
        let Value::Map(entries) = &node.value else {
            return self.wrong_type(node, "an object", path, sensitive);
        };
        let mut out = JsonMap::new();
        for (key, value) in entries {
            let child = join(path, &key.name);
            if let Some((pattern, words)) = &rule.key {
                if !pattern.regex.is_match(&key.name) {
                    let message = format!("key `{}` must be {words}", truncate(&key.name, 60));
                    self.report(Code::Pattern, key.span, &child, sensitive, message);
                }
            }
            let v = self.check(value, &rule.value, &child, key.span, sensitive);
            out.insert(key.name.clone(), v);
        }
        Json::Object(out)
    }

    fn one_of(
        &mut self,
        node: &Node,
        alternatives: &[Alternative],
        path: &str,
        anchor: Span,
        sensitive: bool,
    ) -> Json {
        let mut trials: Vec<(usize, Checker<'a>, Json)> = Vec::with_capacity(alternatives.len());
        for (i, alt) in alternatives.iter().enumerate() {
            let mut trial = self.fork();
            let value = trial.check(node, &alt.schema, path, anchor, sensitive);
            if trial.errors() == 0 {
                return self.adopt(trial, value);
            }
            trials.push((i, trial, value));
        }
        // None fits. When the input plainly means one alternative (it has all
        // of that alternative's required keys and none it does not know),
        // report that alternative's own problems: they are precise.
        let shapes: Vec<Shape> = alternatives
            .iter()
            .map(|a| Shape::of(node, &a.schema))
            .collect();
        let committed = shapes
            .iter()
            .enumerate()
            .filter(|(_, s)| s.fits_keys())
            .min_by_key(|(i, _)| trials[*i].1.errors())
            .map(|(i, _)| i);
        if let Some(i) = committed {
            let (_, trial, value) = trials.swap_remove(i);
            return self.adopt(trial, value);
        }
        let labels: Vec<&str> = alternatives.iter().map(|a| a.label).collect();
        let mut message = format!("matches none of the API's forms: {}", labels.join("; "));
        if matches!(node.value, Value::Map(_)) {
            let score = |s: &Shape| s.missing.len() + s.unknown.len();
            let best = shapes.iter().map(score).min().unwrap_or(0);
            let tied: Vec<&Shape> = shapes.iter().filter(|s| score(s) == best).collect();
            let only_missing = |s: &&Shape| s.unknown.is_empty() && !s.missing.is_empty();
            if tied.len() > 1 && tied.iter().copied().filter(only_missing).count() > 1 {
                let keys: Vec<&str> = tied
                    .iter()
                    .copied()
                    .filter(only_missing)
                    .flat_map(|s| s.missing.iter().copied())
                    .collect();
                message.push_str(&format!("; add one of {}", ticked(&keys)));
                self.report(Code::OneOf, node.span, path, sensitive, message);
                return Json::Null;
            }
            let (closest, shape) = shapes
                .iter()
                .enumerate()
                .min_by_key(|(i, s)| (score(s), trials[*i].1.errors()))
                .expect("oneOf has alternatives");
            message.push_str(&format!("; closest is {}", alternatives[closest].label));
            let mut what = Vec::new();
            if !shape.missing.is_empty() {
                what.push(format!("lacks {}", ticked(&shape.missing)));
            }
            if !shape.unknown.is_empty() {
                what.push(format!("does not allow {}", ticked(&shape.unknown)));
            }
            if !what.is_empty() {
                message.push_str(&format!(", which {}", what.join(" and ")));
            }
        }
        self.report(Code::OneOf, node.span, path, sensitive, message);
        Json::Null
    }

    fn adopt(&mut self, trial: Checker<'a>, value: Json) -> Json {
        self.diagnostics.extend(trial.diagnostics);
        self.missing_env.extend(trial.missing_env);
        value
    }

    /// A value with no schema of its own (annotations, env values): strings
    /// are interpolated, everything else passes through.
    fn free(&mut self, node: &Node, path: &str, sensitive: bool) -> Json {
        match &node.value {
            Value::Null => Json::Null,
            Value::Bool(b) => Json::Bool(*b),
            Value::Int(i) => Json::from(*i),
            Value::Float(f) => Number::from_f64(*f).map(Json::Number).unwrap_or(Json::Null),
            Value::Str(text) => {
                let (value, _) = self.resolve(node, text, path, sensitive);
                Json::String(value.unwrap_or_else(|| text.clone()))
            }
            Value::Seq(items) => Json::Array(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, n)| self.free(n, &format!("{path}[{i}]"), sensitive))
                    .collect(),
            ),
            Value::Map(entries) => Json::Object(
                entries
                    .iter()
                    .map(|(k, v)| {
                        (
                            k.name.clone(),
                            self.free(v, &join(path, &k.name), sensitive),
                        )
                    })
                    .collect(),
            ),
        }
    }
}

/// How a mapping's keys sit against an object alternative.
struct Shape {
    missing: Vec<&'static str>,
    unknown: Vec<String>,
    is_object: bool,
}

impl Shape {
    fn of(node: &Node, schema: &Schema) -> Shape {
        match (&node.value, &schema.kind) {
            (Value::Map(entries), Kind::Object(rule)) => Shape {
                missing: rule
                    .fields
                    .iter()
                    .filter(|f: &&Field| f.required && node.get(f.name).is_none())
                    .map(|f| f.name)
                    .collect(),
                unknown: entries
                    .iter()
                    .filter(|(k, _)| rule.field(&k.name).is_none())
                    .map(|(k, _)| k.name.clone())
                    .collect(),
                is_object: true,
            },
            _ => Shape {
                missing: Vec::new(),
                unknown: Vec::new(),
                is_object: false,
            },
        }
    }

    fn fits_keys(&self) -> bool {
        self.is_object && self.missing.is_empty() && self.unknown.is_empty()
    }
}

/// `spec` + `name` -> `spec.name`; keys that are not identifiers are quoted:
/// `spec.runtimeFiles["/etc/app.conf"]`.
pub fn join(path: &str, key: &str) -> String {
    let plain = key
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    match (path.is_empty(), plain) {
        (true, true) => key.to_string(),
        (false, true) => format!("{path}.{key}"),
        (_, false) => format!("{path}[{}]", Json::String(key.to_string())),
    }
}

/// "unknown field `x`", with the nearest known name when one is close.
pub fn unknown_field(name: &str, known: &[&str]) -> String {
    match suggest(name, known) {
        Some(s) => format!("unknown field `{name}`; did you mean `{s}`?"),
        None if known.is_empty() => format!("unknown field `{name}`: no fields are allowed here"),
        None => format!("unknown field `{name}`; expected one of {}", list(known)),
    }
}

fn suggest<'k>(name: &str, known: &[&'k str]) -> Option<&'k str> {
    let lower = name.to_ascii_lowercase();
    known
        .iter()
        .map(|k| (strsim::osa_distance(&lower, &k.to_ascii_lowercase()), *k))
        .filter(|(d, k)| *d <= 3 && *d * 3 <= k.len().max(3))
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

fn list(values: &[&str]) -> String {
    values.join(", ")
}

fn ticked(values: &[impl AsRef<str>]) -> String {
    values
        .iter()
        .map(|v| format!("`{}`", v.as_ref()))
        .collect::<Vec<_>>()
        .join(", ")
}

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let cut: String = s.chars().take(max).collect();
        format!("{cut}…")
    }
}
