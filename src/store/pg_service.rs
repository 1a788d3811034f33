//! libpq's connection service files: `service=NAME` (or `PGSERVICE`) reads
//! the `[NAME]` section of `PGSERVICEFILE` (else `~/.pg_service.conf`),
//! else of `PGSYSCONFDIR/pg_service.conf`; its `keyword=value` lines are
//! defaults under the URL's own values.

use std::path::{Path, PathBuf};

use super::pg_params::keyword;
use crate::source::display_path;

/// The keywords service `name` sets, from the first file that defines it.
pub(super) fn lookup(
    name: &str,
    env: &dyn Fn(&str) -> Option<String>,
    read: &dyn Fn(&Path) -> std::io::Result<String>,
) -> Result<Vec<(&'static str, String)>, String> {
    let files: Vec<PathBuf> = [
        env("PGSERVICEFILE")
            .filter(|f| !f.is_empty())
            .map(PathBuf::from)
            .or_else(|| env("HOME").map(|h| Path::new(&h).join(".pg_service.conf"))),
        env("PGSYSCONFDIR")
            .filter(|d| !d.is_empty())
            .map(|d| Path::new(&d).join("pg_service.conf")),
    ]
    .into_iter()
    .flatten()
    .collect();
    for file in &files {
        // A file that is not there is passed over, as by libpq; one that
        // cannot be read (a FIFO, a device, a directory, too big, not
        // UTF-8, unreadable) is an error rather than "not defined".
        let text = match read(file) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => {
                return Err(format!(
                    "cannot read service file {}: {e}",
                    display_path(file)
                ))
            }
        };
        if let Some(values) =
            section(&text, name).map_err(|e| format!("service file {}: {e}", display_path(file)))?
        {
            return Ok(values);
        }
    }
    let searched: Vec<String> = files.iter().map(|f| display_path(f)).collect();
    Err(format!(
        "service {name:?} is not defined (searched: {})",
        if searched.is_empty() {
            "no service file: set PGSERVICEFILE".to_string()
        } else {
            searched.join(", ")
        }
    ))
}

/// The keywords of section `[name]` of a service file, or `None` when it
/// has no such section. Blank lines and `#` comments are skipped; any
/// other line of the section must be a libpq `keyword=value` (a nested
/// `service` is refused, as by libpq). Other sections are not checked.
pub(super) fn section(
    text: &str,
    name: &str,
) -> Result<Option<Vec<(&'static str, String)>>, String> {
    let mut found: Option<Vec<(&'static str, String)>> = None;
    let mut inside = false;
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(header) = line.strip_prefix('[') {
            if found.is_some() && inside {
                break;
            }
            inside = header.strip_suffix(']') == Some(name);
            if inside {
                found = Some(Vec::new());
            }
            continue;
        }
        let Some(values) = found.as_mut().filter(|_| inside) else {
            continue;
        };
        let (k, v) = line
            .split_once('=')
            .ok_or_else(|| format!("line {}: not keyword=value", n + 1))?;
        let k = keyword(k.trim()).map_err(|e| format!("line {}: {e}", n + 1))?;
        if k == "service" {
            return Err(format!(
                "line {}: a service cannot name another service",
                n + 1
            ));
        }
        let v = v.trim().to_string();
        if values.iter().any(|(seen, old)| *seen == k && *old != v) {
            return Err(format!(
                "line {}: {k} is given again, with another value",
                n + 1
            ));
        }
        values.push((k, v));
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = "\
# shared settings
[other]
host=elsewhere

[state]
host = db.internal
port=6543
  dbname=nfcron
password=se=cret
sslmode=verify-full
";

    #[test]
    fn a_section_gives_its_keywords() {
        let values = section(FILE, "state").expect("parse").expect("found");
        assert_eq!(
            values,
            [
                ("host", "db.internal".to_string()),
                ("port", "6543".into()),
                ("dbname", "nfcron".into()),
                ("password", "se=cret".into()),
                ("sslmode", "verify-full".into()),
            ]
        );
        assert_eq!(
            section(FILE, "other").expect("parse"),
            Some(vec![("host", "elsewhere".into())])
        );
        assert_eq!(section(FILE, "missing").expect("parse"), None);
    }

    #[test]
    fn a_bad_line_is_refused_with_its_number_never_its_value() {
        let e = section("[s]\nhost=h\nsecret-line\n", "s").expect_err("no =");
        assert_eq!(e, "line 3: not keyword=value");
        let e = section("[s]\nhots=h\n", "s").expect_err("typo");
        assert!(e.starts_with("line 2: unknown parameter \"hots\""), "{e}");
        let e = section("[s]\nservice=t\n", "s").expect_err("nested");
        assert!(e.contains("cannot name another service"), "{e}");
        let e = section("[s]\nsslmode=verify-full\nsslmode=disable\n", "s").expect_err("twice");
        assert_eq!(e, "line 3: sslmode is given again, with another value");
        assert!(section("[s]\nport=1\nport=1\n", "s").is_ok());
        // Another section's mistakes are not this one's.
        assert!(section("[t]\nbad line\n[s]\nport=1\n", "s").is_ok());
    }

    #[test]
    fn the_user_file_is_read_before_the_system_file() {
        let files = |path: &Path| {
            match path.to_str().unwrap_or("") {
                "/home/me/.pg_service.conf" => Some("[a]\nport=1\n".to_string()),
                "/etc/pg/pg_service.conf" => Some("[a]\nport=2\n[b]\nport=3\n".to_string()),
                "/custom" => Some("[b]\nport=4\n".to_string()),
                _ => None,
            }
            .ok_or(std::io::ErrorKind::NotFound.into())
        };
        let env = |vars: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                vars.iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| v.to_string())
            }
        };
        let home = env(&[("HOME", "/home/me"), ("PGSYSCONFDIR", "/etc/pg")]);
        assert_eq!(lookup("a", &home, &files), Ok(vec![("port", "1".into())]));
        assert_eq!(lookup("b", &home, &files), Ok(vec![("port", "3".into())]));
        let custom = env(&[("PGSERVICEFILE", "/custom"), ("HOME", "/home/me")]);
        assert_eq!(lookup("b", &custom, &files), Ok(vec![("port", "4".into())]));
        let e = lookup("a", &custom, &files).expect_err("not in /custom");
        assert_eq!(e, "service \"a\" is not defined (searched: /custom)");
        let e = lookup("a", &env(&[]), &files).expect_err("no file");
        assert!(e.contains("no service file"), "{e}");
    }
}
