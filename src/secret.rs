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
//!   diffed or stored; [`Redacted`] holds it as compact JSON text.

use std::fmt;

use hmac::{Hmac, Mac};
use serde::ser::{Serialize, SerializeMap, Serializer};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value as Json};
use sha2::Sha256;

/// The fields whose values are secrets, by name at the top of `spec`.
pub const SENSITIVE_FIELDS: &[&str] = &[
    "runtimeEnvironment",
    "runtimeFiles",
    "buildArguments",
    "buildFiles",
    "dockerSecretMounts",
];

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

impl Token {
    /// The forms in which a server's text can quote the token back: as it
    /// is, and JSON-escaped once and twice (a message quoting a JSON
    /// document). Longest first, as `api` replaces them.
    pub fn quoted_forms(&self) -> QuotedForms {
        QuotedForms(quoted_forms(&self.0))
    }
}

/// A secret's quoted forms (see [`Token::quoted_forms`]); formats as `***`.
#[derive(Clone, Default)]
pub struct QuotedForms(Vec<String>);

impl QuotedForms {
    pub fn of(secret: &str) -> QuotedForms {
        QuotedForms(quoted_forms(secret))
    }

    pub fn as_slice(&self) -> &[String] {
        &self.0
    }
}

impl fmt::Debug for QuotedForms {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("QuotedForms(***)")
    }
}

/// `secret` as it is and JSON-escaped once and twice, longest first, empty
/// forms left out.
pub fn quoted_forms(secret: &str) -> Vec<String> {
    let escaped = |s: &str| {
        let quoted = Json::String(s.to_string()).to_string();
        quoted[1..quoted.len() - 1].to_string()
    };
    let once = escaped(secret);
    let twice = escaped(&once);
    let mut out = vec![twice, once, secret.to_string()];
    out.retain(|s| !s.is_empty());
    out.dedup();
    out
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

    /// HMAC-SHA256 over the value's canonical JSON, streamed into the MAC
    /// (no copy of the value, no text of it).
    fn mac(&self, value: &Json) -> [u8; 32] {
        struct Feed(Hmac<Sha256>);
        impl std::io::Write for Feed {
            fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
                self.0.update(bytes);
                Ok(bytes.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let mut feed =
            Feed(Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes any key length"));
        serde_json::to_writer(&mut feed, &Sorted(value)).expect("JSON values serialise");
        feed.0.finalize().into_bytes().into()
    }

    /// Eight hex characters of HMAC-SHA256 over the value's canonical JSON.
    pub fn fingerprint(&self, value: &Json) -> String {
        hex(&self.mac(value)[..4])
    }

    /// HMAC-SHA256 over the whole spec (secrets included), in hex: equal
    /// digests mean nothing, secrets included, has changed.
    pub fn digest(&self, spec: &Json) -> String {
        hex(&self.mac(spec))
    }
}

/// A spec with every secret replaced by its fingerprint, kept as compact
/// JSON text: what is shown, diffed and stored (a plan's desired side, a
/// state record). Text rather than a tree: 10,000 of them cost about 4 MB
/// instead of about 35 MB, and only the jobs a diff or a drift check looks
/// into are parsed ([`Redacted::value`]).
#[derive(Clone, serde::Serialize)]
#[serde(transparent)]
pub struct Redacted(Box<RawValue>);

impl<'de> Deserialize<'de> for Redacted {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Redacted, D::Error> {
        let raw = Box::<RawValue>::deserialize(d)?;
        checked(raw.get()).map_err(serde::de::Error::custom)?;
        Ok(Redacted(raw))
    }
}

/// Whether `text` parses as a tree, not just as JSON syntax: a raw value
/// is taken without reading its numbers or escapes, and `1e400` or a lone
/// `\ud800` (a hand-edited state) would otherwise fail only later, in
/// [`Redacted::value`]. Walks the text once, keeping nothing.
fn checked(text: &str) -> Result<(), serde_json::Error> {
    use serde::de::{MapAccess, SeqAccess, Visitor};
    struct Checked;
    impl<'de> Deserialize<'de> for Checked {
        fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Checked, D::Error> {
            d.deserialize_any(Checked)
        }
    }
    impl<'de> Visitor<'de> for Checked {
        type Value = Checked;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("any JSON value")
        }
        fn visit_bool<E>(self, _: bool) -> Result<Checked, E> {
            Ok(Checked)
        }
        fn visit_i64<E>(self, _: i64) -> Result<Checked, E> {
            Ok(Checked)
        }
        fn visit_u64<E>(self, _: u64) -> Result<Checked, E> {
            Ok(Checked)
        }
        fn visit_f64<E>(self, _: f64) -> Result<Checked, E> {
            Ok(Checked)
        }
        fn visit_str<E>(self, _: &str) -> Result<Checked, E> {
            Ok(Checked)
        }
        fn visit_unit<E>(self) -> Result<Checked, E> {
            Ok(Checked)
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Checked, A::Error> {
            while seq.next_element::<Checked>()?.is_some() {}
            Ok(Checked)
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Checked, A::Error> {
            while map.next_entry::<Checked, Checked>()?.is_some() {}
            Ok(Checked)
        }
    }
    serde_json::from_str::<Checked>(text).map(|_| ())
}

impl Redacted {
    /// `spec` redacted as [`redact`] does, written straight to text.
    pub fn of(spec: &Json, keyed: &Keyed, extra: &[String]) -> Redacted {
        let raw = if extra.is_empty() {
            serde_json::value::to_raw_value(&Masked { spec, keyed })
        } else {
            serde_json::value::to_raw_value(&redact(spec, keyed, extra))
        };
        Redacted(raw.expect("JSON values serialise"))
    }

    /// Text read back from storage (a state file, a database row): it
    /// must be JSON. Pretty-printed text (older state files) is made
    /// compact.
    pub fn from_stored(text: String) -> Result<Redacted, serde_json::Error> {
        checked(&text)?;
        Ok(Redacted(RawValue::from_string(text)?).compact())
    }

    /// Replaces the values at the `extra` paths that are not fingerprints
    /// yet by theirs: a record applied before a path
    /// was made `--sensitive` then shows it no more than a new plan does
    /// (and an unchanged value gets the very fingerprint the plan's side
    /// has). Parsed only when there are such paths.
    pub fn add_sensitive(&mut self, keyed: &Keyed, extra: &[String]) {
        if extra.is_empty() {
            return;
        }
        let mut value = self.value();
        let mut changed = false;
        for path in extra {
            if let Some(v) = lookup_mut(&mut value, path).filter(|v| !is_fingerprint(v)) {
                *v = Json::String(fingerprint_text(&keyed.fingerprint(v)));
                changed = true;
            }
        }
        if changed {
            self.0 = serde_json::value::to_raw_value(&value).expect("JSON values serialise");
        }
    }

    /// Compact text, whatever whitespace it was stored with.
    pub fn compact(self) -> Redacted {
        if !self.0.get().contains('\n') {
            return self;
        }
        let value = self.value();
        Redacted(serde_json::value::to_raw_value(&value).expect("JSON values serialise"))
    }

    /// The spec as a tree (parsed on each call).
    pub fn value(&self) -> Json {
        serde_json::from_str(self.0.get()).expect("a Redacted holds JSON")
    }

    /// The compact JSON text.
    pub fn as_str(&self) -> &str {
        self.0.get()
    }

    /// The text, for a request.
    pub fn raw(&self) -> &RawValue {
        &self.0
    }

    /// A value taken as already redacted, for tests.
    #[cfg(test)]
    pub fn assume(value: &Json) -> Redacted {
        Redacted(serde_json::value::to_raw_value(value).expect("JSON values serialise"))
    }
}

impl PartialEq for Redacted {
    fn eq(&self, other: &Redacted) -> bool {
        self.as_str() == other.as_str()
    }
}

impl fmt::Debug for Redacted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Serialises a spec as [`redact`] would return it, without the copy:
/// each entry under the sensitive fields written as its fingerprint.
struct Masked<'a> {
    spec: &'a Json,
    keyed: &'a Keyed,
}

impl Serialize for Masked<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let Json::Object(fields) = self.spec else {
            return self.spec.serialize(s);
        };
        let mut map = s.serialize_map(Some(fields.len()))?;
        for (name, value) in fields {
            match value {
                Json::Object(entries) if SENSITIVE_FIELDS.contains(&name.as_str()) => {
                    map.serialize_entry(
                        name,
                        &Fingerprinted {
                            entries,
                            keyed: self.keyed,
                        },
                    )?;
                }
                _ => map.serialize_entry(name, value)?,
            }
        }
        map.end()
    }
}

struct Fingerprinted<'a> {
    entries: &'a Map<String, Json>,
    keyed: &'a Keyed,
}

impl Serialize for Fingerprinted<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.entries.len()))?;
        for (key, value) in self.entries {
            map.serialize_entry(key, &fingerprint_text(&self.keyed.fingerprint(value)))?;
        }
        map.end()
    }
}

/// A value with object keys in sorted order at every level, serialised
/// without copying it.
struct Sorted<'a>(&'a Json);

impl Serialize for Sorted<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Json::Object(m) => {
                let mut entries: Vec<(&String, &Json)> = m.iter().collect();
                entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
                let mut map = s.serialize_map(Some(entries.len()))?;
                for (k, v) in entries {
                    map.serialize_entry(k, &Sorted(v))?;
                }
                map.end()
            }
            Json::Array(items) => s.collect_seq(items.iter().map(Sorted)),
            other => other.serialize(s),
        }
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

/// The secret values in `spec`: each value whose place in `shown` (the
/// same spec redacted) holds a fingerprint, as text: a string as it is,
/// and for an object or array both each string inside it and its JSON.
/// Longest first; none shorter than 4 characters (those would turn up in
/// any text by chance, and hiding them would hide the words around them).
pub fn hidden_values(spec: &Json, shown: &Json) -> Vec<String> {
    fn leaves(value: &Json, out: &mut Vec<String>) {
        match value {
            Json::String(s) => out.push(s.clone()),
            Json::Array(items) => items.iter().for_each(|v| leaves(v, out)),
            Json::Object(m) => m.values().for_each(|v| leaves(v, out)),
            other => out.push(other.to_string()),
        }
        if value.is_array() || value.is_object() {
            out.push(value.to_string());
        }
    }
    fn walk(spec: &Json, shown: &Json, out: &mut Vec<String>) {
        match (spec, shown) {
            (spec, shown) if is_fingerprint(shown) && spec != shown => leaves(spec, out),
            (Json::Object(a), Json::Object(b)) => {
                for (k, v) in a {
                    if let Some(w) = b.get(k) {
                        walk(v, w, out);
                    }
                }
            }
            (Json::Array(a), Json::Array(b)) => {
                a.iter().zip(b).for_each(|(v, w)| walk(v, w, out));
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(spec, shown, &mut out);
    // As text that quotes JSON holds them: escaped (`"`, `\`, control
    // characters), once or twice.
    let escaped = |s: &String| {
        let quoted = Json::String(s.clone()).to_string();
        quoted[1..quoted.len() - 1].to_string()
    };
    let once: Vec<String> = out.iter().map(escaped).collect();
    let twice: Vec<String> = once.iter().map(escaped).collect();
    out.extend(once);
    out.extend(twice);
    out.retain(|s| s.chars().count() >= 4);
    out.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
    out.dedup();
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
/// whatever order the manifest wrote its keys in. Digests and
/// fingerprints are MACs over this text.
pub fn canonical(value: &Json) -> String {
    serde_json::to_string(&Sorted(value)).expect("JSON values serialise")
}

/// Lower-case hex, two digits a byte.
pub fn hex(bytes: &[u8]) -> String {
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
    fn redacted_text_is_the_redacted_tree_written_compactly() {
        let spec = json!({"name": "a", "runtimeEnvironment": {"DB": "postgres://u:pw@h", "N": 3},
            "buildArguments": {"T": "x"}, "runtimeFiles": "not an object",
            "deployment": {"docker": {"configType": "customCommand", "customCommand": "run --pw x"}}});
        for extra in [vec![], vec!["deployment.docker.customCommand".to_string()]] {
            let text = Redacted::of(&spec, &keyed(), &extra);
            let tree = redact(&spec, &keyed(), &extra);
            assert_eq!(text.as_str(), tree.to_string());
            assert_eq!(text.value(), tree);
        }
        let pretty = serde_json::to_string_pretty(&spec).expect("text");
        let stored = Redacted::from_stored(pretty).expect("JSON");
        assert_eq!(stored.as_str(), spec.to_string());
        assert!(Redacted::from_stored("{\"a\":".into()).is_err());
        // Syntax is not enough: what cannot become a tree is refused when
        // read, never found out later.
        for bad in [r#"{"n":1e400}"#, r#"{"s":"\ud800"}"#, r#"[-1e999]"#] {
            assert!(Redacted::from_stored(bad.into()).is_err(), "{bad}");
            let file = format!(r#"{{"spec":{bad}}}"#);
            #[derive(Deserialize)]
            struct Row {
                #[allow(dead_code)]
                spec: Redacted,
            }
            assert!(serde_json::from_str::<Row>(&file).is_err(), "{bad}");
        }
        assert!(Redacted::from_stored(r#"{"n":1e300,"s":"\ud83d\ude00"}"#.into()).is_ok());
    }

    #[test]
    fn a_path_made_sensitive_after_it_was_applied_is_shown_as_a_fingerprint() {
        let applied = json!({"name": "a", "deployment": {"docker": {"customCommand": "run --pw x"}},
            "runtimeEnvironment": {"A": "(sensitive, fp 0badf00d)"}});
        let extra = vec!["deployment.docker.customCommand".to_string()];
        let mut record = Redacted::assume(&applied);
        record.add_sensitive(&keyed(), &extra);
        assert!(!record.as_str().contains("run --pw x"), "{record:?}");
        // The fingerprint a new plan gives the same value: no false change.
        let planned = Redacted::of(
            &json!({"name": "a", "deployment": {"docker": {"customCommand": "run --pw x"}}}),
            &keyed(),
            &extra,
        );
        let at = |r: &Redacted| r.value()["deployment"]["docker"]["customCommand"].clone();
        assert_eq!(at(&record), at(&planned));
        assert!(is_fingerprint(&at(&record)));
        // Fingerprints already there stay as they are.
        assert_eq!(
            record.value()["runtimeEnvironment"]["A"],
            "(sensitive, fp 0badf00d)"
        );
        let mut again = record.clone();
        again.add_sensitive(&keyed(), &extra);
        assert_eq!(again, record);
    }

    #[test]
    fn hidden_values_are_what_redaction_hid() {
        let spec = json!({"name": "a", "runtimeEnvironment": {"DB": "postgres://u:pw@h", "N": 12345, "X": "ab"},
            "runtimeFiles": {"/f": {"data": "c2VjcmV0", "encoding": "base64"}},
            "deployment": {"docker": {"configType": "customCommand", "customCommand": "run --pw x"}}});
        let extra = ["deployment.docker.customCommand".to_string()];
        let shown = redact(&spec, &keyed(), &extra);
        let hidden = hidden_values(&spec, &shown);
        for secret in [
            "postgres://u:pw@h",
            "12345",
            "c2VjcmV0",
            "run --pw x",
            "base64",
        ] {
            assert!(hidden.iter().any(|h| h == secret), "{secret}: {hidden:?}");
        }
        // Too short to hide; what was not hidden is no secret.
        for shown_value in ["ab", "a", "customCommand", "name"] {
            assert!(!hidden.iter().any(|h| h == shown_value), "{hidden:?}");
        }
        assert!(
            hidden.windows(2).all(|w| w[0].len() >= w[1].len()),
            "longest first"
        );
        assert_eq!(hidden_values(&spec, &spec), Vec::<String>::new());
        // Quoted inside JSON text (an API echoing the body it refused).
        let tricky = json!({"runtimeEnvironment": {"PW": "Q\"LEAK\\SECRET", "T": "TAB\tSECRET2"}});
        let hidden = hidden_values(&tricky, &redact(&tricky, &keyed(), &[]));
        for form in [
            r#"Q\"LEAK\\SECRET"#,
            r#"TAB\tSECRET2"#,
            r#"Q\\\"LEAK\\\\SECRET"#,
        ] {
            assert!(hidden.iter().any(|h| h == form), "{form}: {hidden:?}");
        }
    }

    #[test]
    fn digests_are_macs_over_the_canonical_text() {
        // The text (and so every digest in existing state) is fixed: keys
        // sorted at every level, compact.
        let v = json!({"b": [{"z": 1, "y": "é\n"}], "a": null});
        assert_eq!(canonical(&v), r#"{"a":null,"b":[{"y":"é\n","z":1}]}"#);
        let mut mac = Hmac::<Sha256>::new_from_slice(&[7; KEY_LEN]).expect("key");
        mac.update(canonical(&v).as_bytes());
        assert_eq!(keyed().digest(&v), hex(&mac.finalize().into_bytes()));
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
