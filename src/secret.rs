//! Secrets cannot leak by construction.
//!
//! - [`Token`]: the API token. Its `Debug` and `Display` print `***`; the
//!   only way to the characters is [`Token::expose`], called in one place
//!   (the `Authorization` header, itself marked sensitive).
//! - [`Keyed`]: the per-installation HMAC key (`.nfcron/key`). It turns a
//!   secret value into a fingerprint, `(sensitive, fp 1a2b3c4d)`, that shows
//!   a change without revealing either value, and a spec into a keyed
//!   digest, so the state file holds nothing that could be brute-forced
//!   without the key.
//! - [`redact`]: a spec with every sensitive value replaced by its
//!   fingerprint. This is the only form of a spec that is ever shown,
//!   diffed or stored.

use std::fmt;

use hmac::{Hmac, Mac};
use serde_json::{Map, Value as Json};
use sha2::Sha256;

use crate::manifest::schema::SENSITIVE_FIELDS;

/// The Northflank API token.
#[derive(Clone)]
pub struct Token(String);

impl Token {
    /// Trims surrounding whitespace (a secret mount's trailing newline).
    pub fn new(raw: &str) -> Option<Token> {
        let t = raw.trim();
        (!t.is_empty()).then(|| Token(t.to_string()))
    }

    /// The token's characters, for the `Authorization` header only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(***)")
    }
}

impl fmt::Display for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// Length of the HMAC key in `.nfcron/key`.
pub const KEY_LEN: usize = 32;

/// The HMAC key that fingerprints secrets and digests specs.
#[derive(Clone)]
pub struct Keyed {
    key: [u8; KEY_LEN],
}

impl fmt::Debug for Keyed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Keyed(***)")
    }
}

impl Keyed {
    pub fn new(key: [u8; KEY_LEN]) -> Keyed {
        Keyed { key }
    }

    /// A fresh random key.
    pub fn generate() -> Result<Keyed, getrandom::Error> {
        let mut key = [0u8; KEY_LEN];
        getrandom::fill(&mut key)?;
        Ok(Keyed { key })
    }

    pub fn bytes(&self) -> &[u8; KEY_LEN] {
        &self.key
    }

    fn mac(&self, data: &[u8]) -> [u8; 32] {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes any key length");
        mac.update(data);
        mac.finalize().into_bytes().into()
    }

    /// Eight hex characters of HMAC-SHA256 over the value's canonical JSON.
    pub fn fingerprint(&self, value: &Json) -> String {
        hex(&self.mac(canonical(value).as_bytes())[..4])
    }

    /// HMAC-SHA256 over the whole spec (secrets included), in hex: equal
    /// digests mean nothing, secrets included, has changed.
    pub fn digest(&self, spec: &Json) -> String {
        hex(&self.mac(canonical(spec).as_bytes()))
    }
}

/// What a sensitive value is shown as.
pub fn fingerprint_text(fp: &str) -> String {
    format!("(sensitive, fp {fp})")
}

/// Whether a shown string is a fingerprint (and so, a secret).
pub fn is_fingerprint(value: &Json) -> bool {
    value.as_str().is_some_and(|s| s.starts_with("(sensitive"))
}

/// `spec` with every secret replaced by its fingerprint: each value under
/// the page's sensitive fields (keys stay visible: they name, not reveal),
/// and the whole value at each extra `--sensitive` path (dotted, relative to
/// `spec`, e.g. `deployment.docker.customCommand`).
pub fn redact(spec: &Json, keyed: &Keyed, extra: &[String]) -> Json {
    let mut out = spec.clone();
    if let Json::Object(fields) = &mut out {
        for name in SENSITIVE_FIELDS {
            if let Some(Json::Object(entries)) = fields.get_mut(*name) {
                for value in entries.values_mut() {
                    *value = Json::String(fingerprint_text(&keyed.fingerprint(value)));
                }
            }
        }
    }
    for path in extra {
        if let Some(value) = lookup_mut(&mut out, path) {
            if !is_fingerprint(value) {
                *value = Json::String(fingerprint_text(&keyed.fingerprint(value)));
            }
        }
    }
    out
}

fn lookup_mut<'a>(value: &'a mut Json, path: &str) -> Option<&'a mut Json> {
    let path = path.strip_prefix("spec.").unwrap_or(path);
    path.split('.').try_fold(value, |node, part| match node {
        Json::Object(m) => m.get_mut(part),
        Json::Array(a) => part.parse::<usize>().ok().and_then(|i| a.get_mut(i)),
        _ => None,
    })
}

/// JSON with object keys sorted at every level: one text per value,
/// whatever order the manifest wrote its keys in.
pub fn canonical(value: &Json) -> String {
    fn sorted(value: &Json) -> Json {
        match value {
            Json::Object(m) => {
                let mut keys: Vec<&String> = m.keys().collect();
                keys.sort();
                Json::Object(
                    keys.into_iter()
                        .map(|k| (k.clone(), sorted(&m[k])))
                        .collect::<Map<_, _>>(),
                )
            }
            Json::Array(items) => Json::Array(items.iter().map(sorted).collect()),
            other => other.clone(),
        }
    }
    serde_json::to_string(&sorted(value)).expect("JSON values serialise")
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn keyed() -> Keyed {
        Keyed::new([7; KEY_LEN])
    }

    #[test]
    fn token_never_formats() {
        let t = Token::new("nf-secret-token\n").expect("token");
        assert_eq!(t.expose(), "nf-secret-token");
        assert_eq!(format!("{t} {t:?} {t:#?}"), "*** Token(***) Token(***)");
        assert!(Token::new(" \n").is_none());
    }

    #[test]
    fn redaction_keeps_keys_and_fingerprints_values() {
        let spec = json!({"name": "a", "runtimeEnvironment": {"DB": "postgres://u:pw@h"},
            "runtimeFiles": {"/f": {"data": "eA==", "encoding": "base64"}},
            "deployment": {"docker": {"configType": "customCommand", "customCommand": "run --pw x"}}});
        let out = redact(&spec, &keyed(), &["deployment.docker.customCommand".into()]);
        let text = out.to_string();
        for secret in ["postgres://u:pw@h", "eA==", "run --pw x"] {
            assert!(!text.contains(secret), "{text}");
        }
        let db = out["runtimeEnvironment"]["DB"].as_str().expect("string");
        assert!(
            db.starts_with("(sensitive, fp ") && db.len() == "(sensitive, fp 12345678)".len(),
            "{db}"
        );
        assert_eq!(out["name"], "a");
    }

    #[test]
    fn fingerprints_and_digests_are_keyed_and_order_free() {
        let a = json!({"x": 1, "y": {"b": 2, "a": 1}});
        let b = json!({"y": {"a": 1, "b": 2}, "x": 1});
        assert_eq!(keyed().digest(&a), keyed().digest(&b));
        assert_ne!(keyed().digest(&a), Keyed::new([8; KEY_LEN]).digest(&a));
        assert_ne!(
            keyed().fingerprint(&json!("a")),
            keyed().fingerprint(&json!("b"))
        );
    }
}
