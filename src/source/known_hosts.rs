//! `--known-hosts`: the SSH host keys nfcron trusts, read with OpenSSH's
//! semantics (sshd(8), "SSH_KNOWN_HOSTS FILE FORMAT"), and the host-key
//! check of an SSH remote. No trust on first use: a host that is not listed
//! is refused.
//!
//! - A host on port 22 is looked up as `host`, on another port as
//!   `[host]:port` (what `ssh-keyscan -p` writes); a plain `host` line does
//!   not vouch for another port.
//! - Patterns: comma-separated, `*` and `?` wildcards, `!` negation,
//!   case-insensitive; hashed entries `|1|salt|hash` (HMAC-SHA1 of the
//!   looked-up name keyed by the salt, what `ssh-keyscan -H` and Debian's
//!   `HashKnownHosts yes` write).
//! - A host may have several lines (one per key type): the offered key is
//!   accepted if ANY line for the host lists it. libgit2 is asked to
//!   negotiate a key type the file has (see [`prefer_listed_key_types`]).
//! - `@revoked` lines refuse their key; `@cert-authority` (host
//!   certificates) is not supported and refused as such.
//!
//! Every refusal names the host, port, the offered key's type and SHA256
//! fingerprint (as OpenSSH prints it) and the file.

// A refusal ends the connection once: its size costs nothing, and a
// boxed error would only make the callers noisier.
#![allow(clippy::result_large_err)]

use std::path::{Path, PathBuf};

use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Digest;

/// Lines longer than this are not host-key lines (OpenSSH's limit is 8 KiB
/// for RSA-16384): skipped.
const MAX_LINE: usize = 16 * 1024;

/// The key types libgit2 (libssh2) can be asked for, in its order of
/// preference; RSA's signature variants all use an `ssh-rsa` key.
const NEGOTIABLE: &[&str] = &[
    "ssh-ed25519",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "ssh-rsa",
];

#[derive(Debug, Clone, PartialEq, Eq)]
enum Marker {
    Revoked,
    CertAuthority,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Hosts {
    /// Comma-separated patterns, lower-cased; `!` negates.
    Patterns(Vec<String>),
    /// `|1|salt|hash`: HMAC-SHA1(key = salt, name).
    Hashed { salt: Vec<u8>, hash: Vec<u8> },
}

#[derive(Debug, Clone)]
struct Line {
    number: usize,
    marker: Option<Marker>,
    hosts: Hosts,
    key_type: String,
    /// The key in SSH wire format (the base64 field decoded).
    key: Vec<u8>,
}

/// A parsed `--known-hosts` file.
#[derive(Debug, Clone)]
pub struct KnownHosts {
    path: PathBuf,
    lines: Vec<Line>,
    /// Line numbers that could not be read as host keys (skipped, as
    /// OpenSSH does).
    pub skipped: Vec<usize>,
}

/// Why nfcron refuses a host key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// No line for the host at all.
    Unknown,
    /// Lines for the host, none with this key (`known`: their key types).
    Mismatch { known: Vec<String> },
    /// The key is on a `@revoked` line.
    Revoked { line: usize },
    /// The host is vouched for only by `@cert-authority` lines.
    CertAuthority { line: usize },
    /// `--known-hosts` was not given.
    NoFile,
    /// libgit2 did not hand over the key itself.
    NoKey,
}

/// A host key nfcron refused, in its own words.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[error("refusing the SSH host key of {host} port {port} ({key_type} {fingerprint}): {}", self.why())]
pub struct HostKeyRefused {
    pub host: String,
    pub port: u16,
    pub key_type: String,
    /// `SHA256:<base64 without padding>`, as `ssh-keygen -l` prints it.
    pub fingerprint: String,
    pub file: Option<PathBuf>,
    pub refusal: Refusal,
}

impl HostKeyRefused {
    fn why(&self) -> String {
        let file = self
            .file
            .as_deref()
            .map(super::display_path)
            .unwrap_or_default();
        let name = lookup_name(&self.host, self.port);
        match &self.refusal {
            Refusal::Unknown => format!(
                "`{name}` is not in the known-hosts file {file} (add the host's key, e.g. `ssh-keyscan{} {} >> {file}`, after checking its fingerprint)",
                if self.port == 22 { String::new() } else { format!(" -p {}", self.port) },
                self.host,
            ),
            Refusal::Mismatch { known } => format!(
                "it matches none of the keys the known-hosts file {file} lists for `{name}` ({}); the host key may have changed, or the host is not who it claims to be",
                known.join(", ")
            ),
            Refusal::Revoked { line } => {
                format!("the key is marked @revoked in the known-hosts file {file} (line {line})")
            }
            Refusal::CertAuthority { line } => format!(
                "the known-hosts file {file} vouches for `{name}` only through @cert-authority (line {line}); host certificates are not supported, list the host's own key"
            ),
            Refusal::NoFile => {
                "SSH host keys are checked against --known-hosts, which was not given".to_string()
            }
            Refusal::NoKey => "libgit2 did not provide the host key to check".to_string(),
        }
    }
}

impl KnownHosts {
    /// Reads and parses `path`.
    pub fn load(path: &Path) -> std::io::Result<KnownHosts> {
        let text = std::fs::read(path)?;
        Ok(KnownHosts::parse(path, &String::from_utf8_lossy(&text)))
    }

    /// Parses known-hosts text; lines that are not host keys are skipped
    /// (and counted in `skipped`).
    pub fn parse(path: &Path, text: &str) -> KnownHosts {
        let mut lines = Vec::new();
        let mut skipped = Vec::new();
        for (index, raw) in text.lines().enumerate() {
            let number = index + 1;
            let trimmed = raw.trim();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            match parse_line(number, trimmed) {
                Some(line) => lines.push(line),
                None => skipped.push(number),
            }
        }
        KnownHosts {
            path: path.to_path_buf(),
            lines,
            skipped,
        }
    }

    /// Whether `key` (SSH wire format) is trusted for `host` on `port`.
    pub fn check(&self, host: &str, port: u16, key: &[u8]) -> Result<(), HostKeyRefused> {
        let name = lookup_name(host, port);
        let for_host: Vec<&Line> = self
            .lines
            .iter()
            .filter(|l| l.hosts.matches(&name))
            .collect();
        let refuse = |refusal| Err(refused(host, port, key, Some(&self.path), refusal));
        if let Some(line) = for_host
            .iter()
            .find(|l| l.marker == Some(Marker::Revoked) && l.key == key)
        {
            return refuse(Refusal::Revoked { line: line.number });
        }
        let plain: Vec<&&Line> = for_host.iter().filter(|l| l.marker.is_none()).collect();
        if plain.iter().any(|l| l.key == key) {
            return Ok(());
        }
        if !plain.is_empty() {
            let mut known: Vec<String> = plain.iter().map(|l| l.key_type.clone()).collect();
            known.dedup();
            return refuse(Refusal::Mismatch { known });
        }
        if let Some(line) = for_host
            .iter()
            .find(|l| l.marker == Some(Marker::CertAuthority))
        {
            return refuse(Refusal::CertAuthority { line: line.number });
        }
        refuse(Refusal::Unknown)
    }

    /// The plain (unmarked) lines trusted for `host` on `port`, as
    /// `(key type, base64 key)`, in file order.
    fn trusted_keys(&self, host: &str, port: u16) -> Vec<(&str, String)> {
        let name = lookup_name(host, port);
        self.lines
            .iter()
            .filter(|l| l.marker.is_none() && l.hosts.matches(&name))
            .map(|l| {
                (
                    l.key_type.as_str(),
                    base64::engine::general_purpose::STANDARD.encode(&l.key),
                )
            })
            .collect()
    }
}

/// The refusal for a key, fingerprinted.
pub fn refused(
    host: &str,
    port: u16,
    key: &[u8],
    file: Option<&Path>,
    refusal: Refusal,
) -> HostKeyRefused {
    HostKeyRefused {
        host: host.to_string(),
        port,
        key_type: key_type(key).unwrap_or_else(|| "unknown key type".into()),
        fingerprint: fingerprint(key),
        file: file.map(Path::to_path_buf),
        refusal,
    }
}

/// The name OpenSSH looks a host up by: `host` on port 22, else
/// `[host]:port`.
pub fn lookup_name(host: &str, port: u16) -> String {
    let host = host.to_ascii_lowercase();
    if port == 22 {
        host
    } else {
        format!("[{host}]:{port}")
    }
}

/// `SHA256:` and the unpadded base64 of the key's SHA-256, as OpenSSH
/// prints fingerprints.
pub fn fingerprint(key: &[u8]) -> String {
    let digest = sha2::Sha256::digest(key);
    format!(
        "SHA256:{}",
        base64::engine::general_purpose::STANDARD_NO_PAD.encode(digest)
    )
}

/// The key type a wire-format key names first (`ssh-ed25519`, ...).
pub fn key_type(key: &[u8]) -> Option<String> {
    let len = u32::from_be_bytes(key.get(..4)?.try_into().ok()?) as usize;
    let name = key.get(4..4 + len.min(64))?;
    if len > 64 {
        return None;
    }
    std::str::from_utf8(name)
        .ok()
        .filter(|n| n.chars().all(|c| c.is_ascii_graphic()))
        .map(str::to_string)
}

fn parse_line(number: usize, line: &str) -> Option<Line> {
    if line.len() > MAX_LINE {
        return None;
    }
    let mut fields = line.split_ascii_whitespace();
    let mut first = fields.next()?;
    let marker = if first.starts_with('@') {
        let marker = match first {
            "@revoked" => Marker::Revoked,
            "@cert-authority" => Marker::CertAuthority,
            _ => return None,
        };
        first = fields.next()?;
        Some(marker)
    } else {
        None
    };
    let kind = fields.next()?.to_string();
    let key = base64::engine::general_purpose::STANDARD
        .decode(fields.next()?)
        .ok()?;
    // The type inside the key must be the one written before it
    // (certificate authorities aside, whose line type is the CA key's).
    if key_type(&key).as_deref() != Some(kind.as_str()) {
        return None;
    }
    let hosts = match first.strip_prefix("|1|") {
        Some(hashed) => {
            let (salt, hash) = hashed.split_once('|')?;
            let engine = base64::engine::general_purpose::STANDARD;
            Hosts::Hashed {
                salt: engine.decode(salt).ok()?,
                hash: engine.decode(hash).ok()?,
            }
        }
        None => Hosts::Patterns(first.split(',').map(|p| p.to_ascii_lowercase()).collect()),
    };
    Some(Line {
        number,
        marker,
        hosts,
        key_type: kind,
        key,
    })
}

impl Hosts {
    /// OpenSSH's `match_hostname`: a negated pattern that matches rules
    /// the line out; otherwise any matching pattern rules it in.
    fn matches(&self, name: &str) -> bool {
        match self {
            Hosts::Hashed { salt, hash } => {
                let Ok(mut mac) = Hmac::<sha1::Sha1>::new_from_slice(salt) else {
                    return false;
                };
                mac.update(name.as_bytes());
                mac.verify_slice(hash).is_ok()
            }
            Hosts::Patterns(patterns) => {
                let mut positive = false;
                for pattern in patterns {
                    match pattern.strip_prefix('!') {
                        Some(negated) if wildcard(negated.as_bytes(), name.as_bytes()) => {
                            return false
                        }
                        Some(_) => {}
                        None => positive |= wildcard(pattern.as_bytes(), name.as_bytes()),
                    }
                }
                positive
            }
        }
    }
}

/// `*` (any run) and `?` (one character) glob match, iterative.
fn wildcard(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some(b'*') => {
                star = Some((p, t));
                p += 1;
            }
            Some(&c) if c == b'?' || c == text[t] => {
                p += 1;
                t += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    p = sp + 1;
                    t = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

/// Decides one SSH host key for libgit2's certificate callback: the
/// refusal, if any, is remembered for [`take_refusal`] (libgit2 replaces
/// the callback's message with its generic one).
pub fn check_certificate(
    known: Option<&KnownHosts>,
    host: &str,
    port: u16,
    key: Option<&[u8]>,
) -> Result<(), git2::Error> {
    let result = match (known, key) {
        (Some(known), Some(key)) => known.check(host, port, key),
        (None, Some(key)) => Err(refused(host, port, key, None, Refusal::NoFile)),
        (file, None) => Err(HostKeyRefused {
            host: host.to_string(),
            port,
            key_type: "unknown key type".into(),
            fingerprint: "no fingerprint".into(),
            file: file.map(|k| k.path.clone()),
            refusal: Refusal::NoKey,
        }),
    };
    result.map_err(|refusal| {
        // The error carries it to the user; this is for traces.
        tracing::debug!(
            host = %refusal.host,
            port = refusal.port,
            key_type = %refusal.key_type,
            fingerprint = %refusal.fingerprint,
            "{refusal}"
        );
        let error = git2::Error::new(
            git2::ErrorCode::Certificate,
            git2::ErrorClass::Ssh,
            refusal.to_string(),
        );
        LAST_REFUSAL.with(|slot| *slot.borrow_mut() = Some(refusal));
        error
    })
}

thread_local! {
    /// The last host key refused on this thread (libgit2 runs the callback
    /// on the thread that fetches).
    static LAST_REFUSAL: std::cell::RefCell<Option<HostKeyRefused>> =
        const { std::cell::RefCell::new(None) };
}

/// The host-key refusal behind a libgit2 certificate error on this thread,
/// if nfcron's check made it (taken: asked once per error).
pub fn take_refusal(error: &git2::Error) -> Option<HostKeyRefused> {
    if error.code() != git2::ErrorCode::Certificate {
        return None;
    }
    LAST_REFUSAL.with(|slot| slot.borrow_mut().take())
}

/// Forgets a refusal left by an earlier operation on this thread.
pub fn clear_refusal() {
    LAST_REFUSAL.with(|slot| *slot.borrow_mut() = None);
}

/// Makes libgit2 ask the server for a host key type `--known-hosts` lists
/// for this host, so that a file with only the server's ecdsa or rsa key
/// works when the server also offers ed25519.
///
/// libgit2 (1.9, libssh2 backend) picks its preferred host key algorithms
/// from `<home>/.ssh/known_hosts` and offers no other way to set them; so
/// nfcron points libgit2's home directory (`GIT_OPT_SET_HOMEDIR`, used
/// only for that file and `~` in config values, which the bare cache does
/// not have) at a private temporary directory holding the host's trusted
/// keys as plain lines. The returned guard removes it; keep it alive while
/// connecting. The check itself stays nfcron's ([`check_certificate`]).
pub fn prefer_listed_key_types(
    known: &KnownHosts,
    host: &str,
    port: u16,
) -> std::io::Result<tempfile::TempDir> {
    use std::io::Write as _;
    let home = tempfile::Builder::new().prefix("nfcron-ssh-").tempdir()?;
    let ssh = home.path().join(".ssh");
    std::fs::create_dir(&ssh)?;
    let mut file = std::fs::File::create(ssh.join("known_hosts"))?;
    let name = lookup_name(host, port);
    for (key_type, key) in known.trusted_keys(host, port) {
        // libssh2 refuses the whole file over a key type it does not know.
        if NEGOTIABLE.contains(&key_type) {
            writeln!(file, "{name} {key_type} {key}")?;
        }
    }
    file.sync_all()?;
    set_libgit2_home(home.path())?;
    Ok(home)
}

fn set_libgit2_home(path: &Path) -> std::io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    libgit2_sys::init();
    // SAFETY: GIT_OPT_SET_HOMEDIR takes one NUL-terminated path, which
    // libgit2 copies before returning.
    let rc = unsafe {
        libgit2_sys::git_libgit2_opts(libgit2_sys::GIT_OPT_SET_HOMEDIR as libc::c_int, c.as_ptr())
    };
    if rc < 0 {
        return Err(std::io::Error::other("libgit2 refused GIT_OPT_SET_HOMEDIR"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A wire-format key of `kind` with `body`.
    fn key(kind: &str, body: &[u8]) -> Vec<u8> {
        let mut k = (kind.len() as u32).to_be_bytes().to_vec();
        k.extend_from_slice(kind.as_bytes());
        k.extend_from_slice(body);
        k
    }

    fn b64(bytes: &[u8]) -> String {
        base64::engine::general_purpose::STANDARD.encode(bytes)
    }

    fn hashed(name: &str, salt: &[u8]) -> String {
        let mut mac = Hmac::<sha1::Sha1>::new_from_slice(salt).expect("hmac");
        mac.update(name.as_bytes());
        format!("|1|{}|{}", b64(salt), b64(&mac.finalize().into_bytes()))
    }

    fn parse(text: &str) -> KnownHosts {
        KnownHosts::parse(Path::new("/k/known_hosts"), text)
    }

    #[test]
    fn a_port_other_than_22_is_looked_up_in_brackets() {
        let ed = key("ssh-ed25519", b"E");
        let known = parse(&format!(
            "[git.example.com]:2222 ssh-ed25519 {}\n",
            b64(&ed)
        ));
        assert!(known.check("git.example.com", 2222, &ed).is_ok());
        assert!(known.check("GIT.example.com", 2222, &ed).is_ok());
        let other_port = known.check("git.example.com", 22, &ed).unwrap_err();
        assert_eq!(other_port.refusal, Refusal::Unknown);
        // A plain line vouches for port 22 only.
        let plain = parse(&format!("git.example.com ssh-ed25519 {}\n", b64(&ed)));
        assert!(plain.check("git.example.com", 22, &ed).is_ok());
        assert_eq!(
            plain
                .check("git.example.com", 2222, &ed)
                .unwrap_err()
                .refusal,
            Refusal::Unknown
        );
    }

    #[test]
    fn hashed_entries_match_the_looked_up_name() {
        let ed = key("ssh-ed25519", b"E");
        let known = parse(&format!(
            "{} ssh-ed25519 {}\n{} ssh-ed25519 {}\n",
            hashed("[127.0.0.1]:2222", b"salt-one-20-bytes!!!"),
            b64(&ed),
            hashed("github.com", b"another salt"),
            b64(&ed),
        ));
        assert!(known.check("127.0.0.1", 2222, &ed).is_ok());
        assert!(known.check("github.com", 22, &ed).is_ok());
        assert_eq!(
            known.check("127.0.0.1", 22, &ed).unwrap_err().refusal,
            Refusal::Unknown
        );
        assert_eq!(
            known.check("gitlab.com", 22, &ed).unwrap_err().refusal,
            Refusal::Unknown
        );
    }

    #[test]
    fn any_line_for_the_host_may_list_the_offered_key() {
        let ed = key("ssh-ed25519", b"E");
        let ec = key("ecdsa-sha2-nistp256", b"C");
        let rsa = key("ssh-rsa", b"R");
        let known = parse(&format!(
            "h ecdsa-sha2-nistp256 {}\nh,other ssh-rsa {} comment here\n",
            b64(&ec),
            b64(&rsa)
        ));
        assert!(known.check("h", 22, &ec).is_ok());
        assert!(known.check("h", 22, &rsa).is_ok());
        let refused = known.check("h", 22, &ed).unwrap_err();
        assert_eq!(
            refused.refusal,
            Refusal::Mismatch {
                known: vec!["ecdsa-sha2-nistp256".into(), "ssh-rsa".into()]
            }
        );
        assert_eq!(refused.key_type, "ssh-ed25519");
        assert_eq!(refused.fingerprint, fingerprint(&ed));
        let text = refused.to_string();
        for part in [
            "refusing the SSH host key of h port 22",
            "ssh-ed25519 SHA256:",
            "/k/known_hosts",
            "ecdsa-sha2-nistp256, ssh-rsa",
        ] {
            assert!(text.contains(part), "{text}");
        }
    }

    #[test]
    fn wildcards_and_negation_follow_openssh() {
        let ed = key("ssh-ed25519", b"E");
        let known = parse(&format!(
            "*.example.com,!evil.example.com ssh-ed25519 {}\n",
            b64(&ed)
        ));
        assert!(known.check("git.example.com", 22, &ed).is_ok());
        assert!(known.check("evil.example.com", 22, &ed).is_err());
        assert!(known.check("example.org", 22, &ed).is_err());
        assert!(wildcard(b"10.0.?.*", b"10.0.1.25"));
        assert!(!wildcard(b"10.0.?.*", b"10.0.12.25"));
        assert!(wildcard(b"[*]:2222", b"[h]:2222"));
    }

    #[test]
    fn revoked_keys_are_refused_even_when_also_listed() {
        let ed = key("ssh-ed25519", b"E");
        let known = parse(&format!(
            "h ssh-ed25519 {k}\n@revoked * ssh-ed25519 {k}\n",
            k = b64(&ed)
        ));
        let refused = known.check("h", 22, &ed).unwrap_err();
        assert_eq!(refused.refusal, Refusal::Revoked { line: 2 });
        assert!(refused.to_string().contains("@revoked"), "{refused}");
    }

    #[test]
    fn cert_authority_alone_is_refused_as_unsupported() {
        let ca = key("ssh-ed25519", b"CA");
        let known = parse(&format!(
            "@cert-authority *.example.com ssh-ed25519 {}\n",
            b64(&ca)
        ));
        let offered = key("ssh-ed25519", b"E");
        let refused = known.check("git.example.com", 22, &offered).unwrap_err();
        assert_eq!(refused.refusal, Refusal::CertAuthority { line: 1 });
        assert!(
            refused
                .to_string()
                .contains("host certificates are not supported"),
            "{refused}"
        );
    }

    #[test]
    fn lines_that_are_not_host_keys_are_skipped_and_counted() {
        let ed = key("ssh-ed25519", b"E");
        let known = parse(&format!(
            "# comment\n\n@bogus h ssh-ed25519 {k}\nh ssh-ed25519 not-base64!\nh ssh-rsa {k}\nh\n  h ssh-ed25519 {k}\n",
            k = b64(&ed)
        ));
        assert_eq!(known.skipped, vec![3, 4, 5, 6]);
        assert!(known.check("h", 22, &ed).is_ok());
    }

    #[test]
    fn fingerprints_are_printed_like_openssh() {
        // `ssh-keygen -lf` of this key prints this fingerprint.
        let blob = base64::engine::general_purpose::STANDARD
            .decode("AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl")
            .expect("b64");
        assert_eq!(key_type(&blob).as_deref(), Some("ssh-ed25519"));
        assert_eq!(
            fingerprint(&blob),
            "SHA256:+DiY3wvvV6TuJJhbpZisF/zLDA0zPMSvHdkr4UvCOqU"
        );
    }
}
