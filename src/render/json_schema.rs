//! The manifest format as JSON Schema (draft-07, which yaml-language-server
//! reads), printed from the same [`schema`](crate::manifest::schema) tree the
//! validator walks. What a schema cannot say (the meaning of a cron
//! schedule, duplicate ids across files, `${VAR}` resolution) stays with
//! `nfcron validate`.

use serde_json::{json, Map, Value as Json};

use crate::manifest::schema::{self, Kind, Schema, SPEC};

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
        Kind::Str(rule) => {
            out.insert("type".into(), "string".into());
            if let Some(min) = rule.min_len {
                out.insert("minLength".into(), min.into());
            }
            if let Some(max) = rule.max_len {
                out.insert("maxLength".into(), max.into());
            }
            if let Some(p) = &rule.pattern {
                // A `${VAR}` reference is checked by `nfcron validate` once
                // resolved; an editor cannot resolve it, so it lets it pass.
                out.insert(
                    "anyOf".into(),
                    json!([{"pattern": p.source}, {"pattern": INTERPOLATED}]),
                );
            }
            if !rule.one_of.is_empty() {
                out.insert("enum".into(), rule.one_of.into());
            }
        }
        Kind::Int(rule) => {
            out.insert("type".into(), "integer".into());
            if let Some(min) = rule.min {
                out.insert("minimum".into(), min.into());
            }
            if let Some(max) = rule.max {
                out.insert("maximum".into(), max.into());
            }
            if !rule.one_of.is_empty() {
                out.insert("enum".into(), rule.one_of.into());
            }
        }
        Kind::Number => {
            out.insert("type".into(), "number".into());
        }
        Kind::Bool => {
            out.insert("type".into(), "boolean".into());
        }
        Kind::Object(rule) => {
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
            let conditions: Vec<Json> = rule
                .conditionals
                .iter()
                .map(|c| {
                    // Each `required` names properties its own subschema
                    // declares (ajv's strictRequired).
                    let declared: Map<String, Json> = c
                        .require
                        .iter()
                        .map(|r| (r.to_string(), json!({})))
                        .collect();
                    json!({
                        "if": {"properties": {c.when: {"enum": c.is}}, "required": [c.when]},
                        "then": {"properties": declared, "required": c.require},
                    })
                })
                .collect();
            if !conditions.is_empty() {
                out.insert("allOf".into(), conditions.into());
            }
        }
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
            if let Some(max) = rule.max_items {
                out.insert("maxItems".into(), max.into());
            }
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
