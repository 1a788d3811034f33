//! The manifest format as JSON Schema (draft-07, which yaml-language-server
//! reads), printed from the same [`schema`](crate::manifest::schema) tree the
//! validator walks. What a schema cannot say (the meaning of a cron
//! schedule, duplicate ids across files, `${VAR}` resolution) stays with
//! `nfcron validate`.

use serde_json::{json, Map, Value as Json};

use crate::manifest::schema::{
    self, Conditional, IntRule, Kind, ObjectRule, Schema, StrRule, SPEC,
};

/// A string holding a `${VAR}` reference.
pub const INTERPOLATED: &str = r"\$\{[A-Za-z_][A-Za-z0-9_]*(:?-[^}]*)?\}";

pub fn manifest_schema() -> Json {
    json!({
        "$schema": "http://json-schema.org/draft-07/schema#",
        "$id": "https://nfcron.dev/schema/nfcron-v1.json",
        "title": "nfcron manifest",
        "description": "One Northflank cron job: the body of PUT /v1/projects/{projectId}/jobs/cron, with where to send it.",
        "type": "object",
        "additionalProperties": false,
        "required": ["kind", "spec"],
        "properties": {
            "apiVersion": {"description": "Manifest format version.", "enum": [schema::API_VERSION]},
            "kind": {"description": "Always CronJob.", "enum": [schema::KIND]},
            "project": {"description": "Northflank project id; may come from --project or NFCRON_PROJECT instead.", "type": "string", "pattern": "^[a-z0-9][a-z0-9-]*$", "maxLength": 64},
            // `team: null` is no team, as `validate` reads it.
            "team": {"description": "Team id, for team-scoped routes (/v1/teams/{team}/projects/...).", "anyOf": [
                {"type": "string", "pattern": "^[a-z0-9][a-z0-9-]*$", "maxLength": 64},
                {"type": "null"},
            ]},
            "spec": node(&SPEC),
        }
    })
}

fn node(schema: &Schema) -> Json {
    let mut out = Map::new();
    if !schema.description.is_empty() {
        out.insert("description".into(), schema.description.into());
    }
    match &schema.kind {
        Kind::Str(rule) => string(rule, &mut out),
        Kind::Int(rule) => integer(rule, &mut out),
        Kind::Number => put(&mut out, "type", Some("number")),
        Kind::Bool => put(&mut out, "type", Some("boolean")),
        Kind::Object(rule) => object(rule, &mut out),
        Kind::Map(rule) => {
            out.insert("type".into(), "object".into());
            if let Some((pattern, _)) = &rule.key {
                out.insert(
                    "propertyNames".into(),
                    json!({"type": "string", "pattern": pattern.source}),
                );
            }
            out.insert("additionalProperties".into(), node(&rule.value));
        }
        Kind::Array(rule) => {
            out.insert("type".into(), "array".into());
            out.insert("items".into(), node(&rule.items));
            put(&mut out, "maxItems", rule.max_items);
        }
        Kind::OneOf(alternatives) => {
            let options: Vec<Json> = alternatives
                .iter()
                .map(|a| {
                    let mut alt = node(&a.schema);
                    if let Json::Object(m) = &mut alt {
                        m.insert("title".into(), a.label.into());
                    }
                    alt
                })
                .collect();
            out.insert("oneOf".into(), options.into());
        }
        Kind::Nullable(inner) => {
            // The inner schema's description stays outside, as for any
            // other field.
            let mut inner = node(inner);
            if let Json::Object(m) = &mut inner {
                m.remove("description");
            }
            out.insert("anyOf".into(), json!([inner, {"type": "null"}]));
        }
        Kind::StrOrObject => {
            // Not a union `type`: ajv's strict mode refuses those.
            out.insert(
                "anyOf".into(),
                json!([{"type": "string"}, {"type": "object"}]),
            );
        }
    }
    Json::Object(out)
}

/// Inserts `key` if there is a value for it.
fn put(out: &mut Map<String, Json>, key: &str, value: Option<impl Into<Json>>) {
    if let Some(value) = value {
        out.insert(key.into(), value.into());
    }
}

/// Inserts `enum` unless the rule allows any value.
fn put_enum<T: Clone + Into<Json>>(out: &mut Map<String, Json>, one_of: &[T]) {
    if !one_of.is_empty() {
        out.insert("enum".into(), one_of.into());
    }
}

fn string(rule: &StrRule, out: &mut Map<String, Json>) {
    put(out, "type", Some("string"));
    put(out, "minLength", rule.min_len);
    put(out, "maxLength", rule.max_len);
    if let Some(p) = &rule.pattern {
        // A `${VAR}` reference is checked by `nfcron validate` once
        // resolved; an editor cannot resolve it, so it lets it pass.
        out.insert(
            "anyOf".into(),
            json!([{"pattern": p.source}, {"pattern": INTERPOLATED}]),
        );
    }
    put_enum(out, rule.one_of);
}

fn integer(rule: &IntRule, out: &mut Map<String, Json>) {
    put(out, "type", Some("integer"));
    put(out, "minimum", rule.min);
    put(out, "maximum", rule.max);
    put_enum(out, rule.one_of);
}

fn object(rule: &ObjectRule, out: &mut Map<String, Json>) {
    out.insert("type".into(), "object".into());
    out.insert("additionalProperties".into(), false.into());
    let properties: Map<String, Json> = rule
        .fields
        .iter()
        .map(|f| (f.name.to_string(), node(&f.schema)))
        .collect();
    out.insert("properties".into(), properties.into());
    let required: Vec<&str> = rule
        .fields
        .iter()
        .filter(|f| f.required)
        .map(|f| f.name)
        .collect();
    if !required.is_empty() {
        out.insert("required".into(), required.into());
    }
    let conditions: Vec<Json> = rule.conditionals.iter().map(conditional).collect();
    if !conditions.is_empty() {
        out.insert("allOf".into(), conditions.into());
    }
}

/// `when` is one of `is` => the fields in `require` are required.
fn conditional(c: &Conditional) -> Json {
    // Each `required` names properties its own subschema declares (ajv's
    // strictRequired).
    let declared: Map<String, Json> = c
        .require
        .iter()
        .map(|r| (r.to_string(), json!({})))
        .collect();
    json!({
        "if": {"properties": {c.when: {"enum": c.is}}, "required": [c.when]},
        "then": {"properties": declared, "required": c.require},
    })
}
