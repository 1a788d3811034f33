//! Signed sources (`--verify-signatures FILE`): whether a Git commit carries
//! a valid signature by a key the file lists. The file is an OpenSSH
//! allowed-signers file (git's `gpg.ssh.allowedSignersFile`) or an armored
//! OpenPGP public keyring, told apart by its content.
//!
//! Pure: the file's bytes and a commit's signature, payload and committer
//! in, a verdict out. Reading the commit is `git.rs`'s part; the
//! cryptography is `ssh-key`'s (sshsig) and `pgp`'s (rpgp). A refused
//! commit is a [`Refusal`]: a typed value the daemon shows on `/readyz`
//! and that a caller can turn into a notification.
//!
//! SSH follows `ssh-keygen -Y verify` as git drives it: the signature's
//! key must be listed for a principal matching the committer's email, in
//! the namespace `git`, and valid (`valid-after`/`valid-before`) at the
//! commit's committer time. OpenPGP: the signature must verify against a
//! primary key or signing subkey of the keyring, and the key must be
//! usable, as `git verify-commit` (gpg) wants it:
//!
//! - not revoked: a key-revocation signature on the primary key, or a
//!   subkey-revocation signature on the signing subkey, that verifies
//!   refuses every signature by it, whenever made and whatever the reason
//!   given (as gpg does);
//! - not expired, neither when the signature was made (its creation time)
//!   nor now (the verifier's clock). The expiry of the primary key is read
//!   from its newest verifying self-signature (direct-key or user ID
//!   certification), a subkey's from its newest verifying binding
//!   signature; a subkey is unusable once its primary key is. "Now" too,
//!   as git refuses a good signature by a key that has expired since
//!   (gpg's `EXPKEYSIG`): the creation time is the signer's own claim, so
//!   whoever holds an expired key could otherwise backdate new signatures.
//!   A commit accepted before its key expires is refused after, and
//!   `watch` then keeps the last verified revision applied;
//! - a signature dated before its key was made is refused, and so is one
//!   whose own expiration time has passed.

use std::path::{Path, PathBuf};

use pgp::composed::{Deserializable, DetachedSignature, SignedPublicKey, SignedPublicSubKey};
use pgp::packet::{Signature, SignatureType};
use pgp::types::{KeyDetails, Tag};

/// A larger file is refused: an allowed-signers file or a keyring is a
/// few kilobytes.
pub const MAX_FILE_BYTES: u64 = 1024 * 1024;
/// The sshsig namespace git signs commits in.
pub const NAMESPACE: &str = "git";

const SSH_ARMOR: &str = "-----BEGIN SSH SIGNATURE-----";
const PGP_ARMOR: &str = "-----BEGIN PGP SIGNATURE-----";
const KEYRING_ARMOR: &str = "-----BEGIN PGP PUBLIC KEY BLOCK-----";

/// What a commit offers for verification.
#[derive(Debug, Clone)]
pub struct SignedCommit {
    /// The full commit id.
    pub commit: String,
    /// The committer's email: the principal an SSH key must be listed for.
    pub committer_email: String,
    /// The committer time (Unix seconds): `valid-after`/`valid-before`
    /// are checked against it, as git does.
    pub committer_time: i64,
    /// The armored signature (`gpgsig` header); `None`: unsigned.
    pub signature: Option<Vec<u8>>,
    /// The bytes the signature covers (the commit without its signature).
    pub payload: Vec<u8>,
}

/// A commit whose manifests are not applied, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("commit {commit} is not applied (--verify-signatures): {reason}")]
pub struct Refusal {
    pub commit: String,
    pub reason: Reason,
}

/// Why a commit's signature is not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Reason {
    #[error("it is not signed")]
    Unsigned,
    /// The library's words on what is wrong with it.
    #[error("its {kind} signature cannot be read: {detail}")]
    Malformed { kind: &'static str, detail: String },
    #[error("its signature is neither an SSH nor an OpenPGP signature (an X.509 one?)")]
    UnknownFormat,
    #[error("it carries {found} signature, but the --verify-signatures file holds {expected}")]
    WrongKind {
        found: &'static str,
        expected: &'static str,
    },
    #[error(
        "it is signed by the SSH key {fingerprint}, which the allowed-signers file does not list"
    )]
    UnlistedKey { fingerprint: String },
    #[error("it is signed by the SSH key {fingerprint}, which the allowed-signers file does not list for the committer `{email}`")]
    Principal { fingerprint: String, email: String },
    #[error("its signature is for the namespace `{0}`, not `git`")]
    Namespace(String),
    #[error("the SSH key {fingerprint} is listed for the committer (line {line}) only for namespaces other than `git`")]
    NamespaceNotAllowed { fingerprint: String, line: usize },
    #[error("the SSH key {fingerprint} is listed for the committer (line {line}) {bound}, and the commit was made at {time}")]
    OutsideValidity {
        fingerprint: String,
        line: usize,
        bound: String,
        time: String,
    },
    #[error("its signature by the key {key} does not verify: {detail}")]
    BadSignature { key: String, detail: String },
    #[error("it is signed by the OpenPGP key {issuer}, which the keyring does not hold")]
    UnlistedPgpKey { issuer: String },
    /// A verifying revocation signature: on the primary key, or on the
    /// signing subkey (then `fingerprint` is the subkey's).
    #[error("it is signed by the OpenPGP key {fingerprint}, which is revoked{reason}")]
    KeyRevoked {
        fingerprint: String,
        /// `: ` and the revocation's reason text, if it gives one.
        reason: String,
    },
    /// The key had expired when the signature was made, or has since.
    #[error("it is signed by the OpenPGP key {fingerprint}, which expired at {at}")]
    KeyExpired { fingerprint: String, at: String },
    #[error("its signature is dated {signed}, before the OpenPGP key {fingerprint} was made ({created})")]
    PredatesKey {
        fingerprint: String,
        signed: String,
        created: String,
    },
    #[error("its OpenPGP signature expired at {0}")]
    SignatureExpired(String),
}

/// Why the `--verify-signatures` file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read the --verify-signatures file {}", .path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the --verify-signatures file {} is larger than 1 MiB", .path.display())]
    TooLarge { path: PathBuf },
    #[error("the --verify-signatures file {} is not text (UTF-8)", .path.display())]
    NotText { path: PathBuf },
    #[error("the --verify-signatures file {}: {problem}", .path.display())]
    Parse { path: PathBuf, problem: ParseError },
}

/// What is wrong with the file's content.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("lists no key: an allowed-signers file needs a line `principals keytype base64-key`, a keyring a `{KEYRING_ARMOR}` block")]
    Empty,
    #[error("line {line}: {problem}")]
    Line { line: usize, problem: LineProblem },
    /// rpgp's words on the keyring.
    #[error("not a valid OpenPGP public keyring: {0}")]
    Keyring(String),
}

/// A malformed allowed-signers line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LineProblem {
    #[error("no key after the principals (expected `principals [options] keytype base64-key`)")]
    NoKey,
    #[error("an unterminated quote")]
    Unterminated,
    #[error("unknown option `{0}`")]
    UnknownOption(String),
    #[error("`{option}` wants a time YYYYMMDD[Z] or YYYYMMDDHHMM[SS][Z], not `{value}`")]
    BadTime { option: &'static str, value: String },
    #[error("`cert-authority` (SSH certificates) is not supported: list the signers' keys")]
    CertAuthority,
    /// ssh-key's words on the key.
    #[error("the key cannot be read: {0}")]
    BadKey(String),
}

/// The keys `--verify-signatures` lists.
#[derive(Debug, Clone)]
pub enum Signers {
    Ssh(Vec<AllowedSigner>),
    OpenPgp(Vec<SignedPublicKey>),
}

/// One allowed-signers line.
#[derive(Debug, Clone)]
pub struct AllowedSigner {
    pub line: usize,
    /// Comma-separated patterns (`*`, `?`, `!` negation).
    pub principals: String,
    /// `namespaces="..."`; `None`: any.
    pub namespaces: Option<Vec<String>>,
    /// Unix seconds, from `valid-after=`/`valid-before=`.
    pub valid_after: Option<i64>,
    pub valid_before: Option<i64>,
    pub key: ssh_key::PublicKey,
}

impl Signers {
    /// Reads and parses `path`, bounded to [`MAX_FILE_BYTES`].
    pub fn load(path: &Path) -> Result<Signers, LoadError> {
        use std::io::Read;
        let mut bytes = Vec::new();
        std::fs::File::open(path)
            .and_then(|f| f.take(MAX_FILE_BYTES + 1).read_to_end(&mut bytes))
            .map_err(|source| LoadError::Read {
                path: path.to_path_buf(),
                source,
            })?;
        if bytes.len() as u64 > MAX_FILE_BYTES {
            return Err(LoadError::TooLarge {
                path: path.to_path_buf(),
            });
        }
        let text = String::from_utf8(bytes).map_err(|_| LoadError::NotText {
            path: path.to_path_buf(),
        })?;
        Signers::parse(&text).map_err(|problem| LoadError::Parse {
            path: path.to_path_buf(),
            problem,
        })
    }

    /// An armored keyring if the text holds one, else an allowed-signers
    /// file. Either must list at least one key.
    pub fn parse(text: &str) -> Result<Signers, ParseError> {
        if text.contains(KEYRING_ARMOR) {
            return parse_keyring(text).map(Signers::OpenPgp);
        }
        let signers = parse_allowed_signers(text)?;
        if signers.is_empty() {
            return Err(ParseError::Empty);
        }
        Ok(Signers::Ssh(signers))
    }

    /// Whether `commit` may be applied, judged by this machine's clock.
    pub fn check(&self, commit: &SignedCommit) -> Result<(), Refusal> {
        self.check_at(commit, jiff::Timestamp::now().as_second())
    }

    /// Whether `commit` may be applied at `now` (Unix seconds): an OpenPGP
    /// key or signature that has expired by then is refused.
    pub fn check_at(&self, commit: &SignedCommit, now: i64) -> Result<(), Refusal> {
        self.reason(commit, now).map_err(|reason| Refusal {
            commit: commit.commit.clone(),
            reason,
        })
    }

    fn reason(&self, commit: &SignedCommit, now: i64) -> Result<(), Reason> {
        let signature = commit.signature.as_deref().ok_or(Reason::Unsigned)?;
        let text = std::str::from_utf8(signature).map_err(|_| Reason::UnknownFormat)?;
        let trimmed = text.trim_start();
        match self {
            Signers::Ssh(signers) if trimmed.starts_with(SSH_ARMOR) => {
                verify_ssh(signers, text, commit)
            }
            Signers::OpenPgp(keys) if trimmed.starts_with(PGP_ARMOR) => {
                verify_openpgp(keys, text, &commit.payload, now)
            }
            Signers::Ssh(_) if trimmed.starts_with(PGP_ARMOR) => Err(Reason::WrongKind {
                found: "an OpenPGP",
                expected: "an allowed-signers file (SSH keys)",
            }),
            Signers::OpenPgp(_) if trimmed.starts_with(SSH_ARMOR) => Err(Reason::WrongKind {
                found: "an SSH",
                expected: "an OpenPGP keyring",
            }),
            _ => Err(Reason::UnknownFormat),
        }
    }
}

// ---- SSH --------------------------------------------------------------

fn verify_ssh(
    signers: &[AllowedSigner],
    armored: &str,
    commit: &SignedCommit,
) -> Result<(), Reason> {
    let sig = ssh_key::SshSig::from_pem(armored.trim()).map_err(|e| Reason::Malformed {
        kind: "SSH",
        detail: e.to_string(),
    })?;
    let fingerprint = sig
        .public_key()
        .fingerprint(ssh_key::HashAlg::Sha256)
        .to_string();
    if sig.namespace() != NAMESPACE {
        return Err(Reason::Namespace(
            super::display_text(sig.namespace()).into_owned(),
        ));
    }
    let listed: Vec<&AllowedSigner> = signers
        .iter()
        .filter(|s| s.key.key_data() == sig.public_key())
        .collect();
    if listed.is_empty() {
        return Err(Reason::UnlistedKey { fingerprint });
    }
    let email = &commit.committer_email;
    let for_committer: Vec<&AllowedSigner> = listed
        .into_iter()
        .filter(|s| match_pattern_list(email, &s.principals))
        .collect();
    let Some(first) = for_committer.first() else {
        return Err(Reason::Principal {
            fingerprint,
            email: email.clone(),
        });
    };
    // Any line that allows the signature will do; else the first one's
    // objection is the reason.
    let allowed = for_committer
        .iter()
        .find(|s| line_allows(s, &fingerprint, commit.committer_time).is_ok());
    let Some(signer) = allowed else {
        return line_allows(first, &fingerprint, commit.committer_time);
    };
    signer
        .key
        .verify(NAMESPACE, &commit.payload, &sig)
        .map_err(|e| Reason::BadSignature {
            key: fingerprint,
            detail: e.to_string(),
        })
}

/// Whether the line's options allow a `git` signature made at `time`.
fn line_allows(signer: &AllowedSigner, fingerprint: &str, time: i64) -> Result<(), Reason> {
    if let Some(namespaces) = &signer.namespaces {
        if !namespaces.iter().any(|n| match_pattern(NAMESPACE, n)) {
            return Err(Reason::NamespaceNotAllowed {
                fingerprint: fingerprint.to_string(),
                line: signer.line,
            });
        }
    }
    let outside = |bound: String| Reason::OutsideValidity {
        fingerprint: fingerprint.to_string(),
        line: signer.line,
        bound,
        time: show_time(time),
    };
    if let Some(after) = signer.valid_after.filter(|&after| time < after) {
        return Err(outside(format!("from {}", show_time(after))));
    }
    if let Some(before) = signer.valid_before.filter(|&before| time > before) {
        return Err(outside(format!("until {}", show_time(before))));
    }
    Ok(())
}

fn show_time(seconds: i64) -> String {
    jiff::Timestamp::from_second(seconds)
        .map(|t| t.to_string())
        .unwrap_or_else(|_| seconds.to_string())
}

/// The lines of an allowed-signers file (`man ssh-keygen`, ALLOWED
/// SIGNERS); `#` comments and blank lines skipped.
pub fn parse_allowed_signers(text: &str) -> Result<Vec<AllowedSigner>, ParseError> {
    let mut signers = Vec::new();
    for (index, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let signer = parse_line(index + 1, line).map_err(|problem| ParseError::Line {
            line: index + 1,
            problem,
        })?;
        signers.push(signer);
    }
    Ok(signers)
}

fn parse_line(number: usize, line: &str) -> Result<AllowedSigner, LineProblem> {
    let (principals, rest) = next_field(line)?;
    let (second, after_second) = next_field(rest)?;
    if second.is_empty() {
        return Err(LineProblem::NoKey);
    }
    // As ssh-keygen does: a second field that is not a key type is the
    // options.
    let (options, key_text) = if is_key_type(second) {
        (None, rest)
    } else {
        (Some(second), after_second)
    };
    if key_text.trim().is_empty() {
        return Err(LineProblem::NoKey);
    }
    let key = ssh_key::PublicKey::from_openssh(key_text.trim())
        .map_err(|e| LineProblem::BadKey(e.to_string()))?;
    let mut signer = AllowedSigner {
        line: number,
        principals: unquote(principals).to_string(),
        namespaces: None,
        valid_after: None,
        valid_before: None,
        key,
    };
    if let Some(options) = options {
        apply_options(&mut signer, options)?;
    }
    Ok(signer)
}

fn is_key_type(field: &str) -> bool {
    ["ssh-", "ecdsa-sha2-", "sk-ssh-", "sk-ecdsa-", "rsa-sha2-"]
        .iter()
        .any(|p| field.starts_with(p))
}

/// The first whitespace-separated field (a quoted part may hold spaces)
/// and what follows it.
fn next_field(text: &str) -> Result<(&str, &str), LineProblem> {
    let text = text.trim_start();
    let mut quoted = false;
    for (i, c) in text.char_indices() {
        match c {
            '"' => quoted = !quoted,
            c if c.is_whitespace() && !quoted => return Ok((&text[..i], &text[i..])),
            _ => {}
        }
    }
    if quoted {
        return Err(LineProblem::Unterminated);
    }
    Ok((text, ""))
}

fn unquote(text: &str) -> &str {
    text.strip_prefix('"')
        .and_then(|t| t.strip_suffix('"'))
        .unwrap_or(text)
}

/// `namespaces="a,b"`, `valid-after=T`, `valid-before=T`; `cert-authority`
/// is refused. Options are comma-separated; a quoted value may hold commas.
fn apply_options(signer: &mut AllowedSigner, options: &str) -> Result<(), LineProblem> {
    for option in split_options(options) {
        let (name, value) = option.split_once('=').unwrap_or((option, ""));
        let value = unquote(value);
        match name.to_ascii_lowercase().as_str() {
            "cert-authority" => return Err(LineProblem::CertAuthority),
            "namespaces" => {
                signer.namespaces = Some(value.split(',').map(str::to_string).collect())
            }
            "valid-after" => signer.valid_after = Some(parse_time("valid-after", value)?),
            "valid-before" => signer.valid_before = Some(parse_time("valid-before", value)?),
            _ => return Err(LineProblem::UnknownOption(name.to_string())),
        }
    }
    Ok(())
}

fn split_options(options: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut start, mut quoted) = (0, false);
    for (i, c) in options.char_indices() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => {
                parts.push(&options[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&options[start..]);
    parts.into_iter().filter(|p| !p.is_empty()).collect()
}

/// `YYYYMMDD[Z]` or `YYYYMMDDHHMM[SS][Z]` as Unix seconds: UTC with `Z`,
/// this machine's time zone without (as ssh-keygen reads it).
fn parse_time(option: &'static str, value: &str) -> Result<i64, LineProblem> {
    let bad = || LineProblem::BadTime {
        option,
        value: value.to_string(),
    };
    let (digits, utc) = match value.strip_suffix(['Z', 'z']) {
        Some(d) => (d, true),
        None => (value, false),
    };
    if !digits.bytes().all(|b| b.is_ascii_digit()) || ![8, 12, 14].contains(&digits.len()) {
        return Err(bad());
    }
    let num = |range: std::ops::Range<usize>| digits.get(range).and_then(|d| d.parse().ok());
    let field = |range| num(range).unwrap_or(0i16);
    let time = jiff::civil::DateTime::new(
        field(0..4),
        field(4..6) as i8,
        field(6..8) as i8,
        field(8..10) as i8,
        field(10..12) as i8,
        field(12..14) as i8,
        0,
    )
    .map_err(|_| bad())?;
    let zone = if utc {
        jiff::tz::TimeZone::UTC
    } else {
        jiff::tz::TimeZone::system()
    };
    time.to_zoned(zone)
        .map(|z| z.timestamp().as_second())
        .map_err(|_| bad())
}

/// OpenSSH's `match_pattern_list`: any pattern matches and no negated
/// one (`!pattern`) does. Case-sensitive, as for principals.
pub fn match_pattern_list(text: &str, list: &str) -> bool {
    let mut matched = false;
    for pattern in list.split(',') {
        match pattern.strip_prefix('!') {
            Some(negated) if match_pattern(text, negated) => return false,
            Some(_) => {}
            None => matched |= match_pattern(text, pattern),
        }
    }
    matched
}

/// A glob with `*` (any run) and `?` (any one character).
pub fn match_pattern(text: &str, pattern: &str) -> bool {
    let (text, pattern): (Vec<char>, Vec<char>) =
        (text.chars().collect(), pattern.chars().collect());
    let (mut t, mut p) = (0, 0);
    // Where the last `*` was, and the text position it stands for now.
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some('*') => {
                star = Some((p, t));
                p += 1;
            }
            Some(&c) if c == '?' || c == text[t] => {
                t += 1;
                p += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    star = Some((sp, st + 1));
                    p = sp + 1;
                    t = st + 1;
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|&c| c == '*')
}

// ---- OpenPGP ----------------------------------------------------------

/// Every key in an armored keyring, which may be several armored blocks
/// one after the other (exports put together); a key whose
/// self-signatures do not verify is refused with the file.
fn parse_keyring(text: &str) -> Result<Vec<SignedPublicKey>, ParseError> {
    let keyring = |e: pgp::errors::Error| ParseError::Keyring(e.to_string());
    let mut keys = Vec::new();
    for (start, _) in text.match_indices(KEYRING_ARMOR) {
        let (block, _) = SignedPublicKey::from_string_many(&text[start..]).map_err(keyring)?;
        for key in block {
            let key = key.map_err(keyring)?;
            key.verify_bindings().map_err(keyring)?;
            keys.push(key);
        }
    }
    if keys.is_empty() {
        return Err(ParseError::Empty);
    }
    Ok(keys)
}

fn verify_openpgp(
    keys: &[SignedPublicKey],
    armored: &str,
    payload: &[u8],
    now: i64,
) -> Result<(), Reason> {
    let (sig, _) = DetachedSignature::from_string(armored).map_err(|e| Reason::Malformed {
        kind: "OpenPGP",
        detail: e.to_string(),
    })?;
    let sig = sig.signature;
    let fingerprints = sig.issuer_fingerprint();
    let key_ids = sig.issuer_key_id();
    let issued = |key: &dyn KeyDetails| {
        fingerprints.iter().any(|f| **f == key.fingerprint())
            || key_ids.iter().any(|id| **id == key.legacy_key_id())
    };
    for key in keys {
        if issued(&key.primary_key) {
            pgp_verdict(sig.verify(&key.primary_key, payload), &key.primary_key)?;
            return usable(key, None, &sig, now);
        }
        // Subkeys whose newest binding allows signing.
        for subkey in key.public_subkeys.iter().filter(|s| issued(&s.key)) {
            if newest_binding(key, subkey).is_some_and(|b| b.key_flags().sign()) {
                pgp_verdict(sig.verify(&subkey.key, payload), &subkey.key)?;
                return usable(key, Some(subkey), &sig, now);
            }
        }
    }
    let issuer = match (fingerprints.first(), key_ids.first()) {
        (Some(f), _) => format!("{f:X}"),
        (None, Some(id)) => hex(id.as_ref()),
        (None, None) => "(the signature names no issuer)".into(),
    };
    Err(Reason::UnlistedPgpKey { issuer })
}

fn pgp_verdict(result: pgp::errors::Result<()>, key: &dyn KeyDetails) -> Result<(), Reason> {
    result.map_err(|e| Reason::BadSignature {
        key: format!("{:X}", key.fingerprint()),
        detail: e.to_string(),
    })
}

/// Whether `sig`, which verifies against `key`'s primary key or its
/// `subkey`, was made by a usable key: neither revoked nor expired, at the
/// signature's creation time and at `now` (the module doc says why).
fn usable(
    key: &SignedPublicKey,
    subkey: Option<&SignedPublicSubKey>,
    sig: &Signature,
    now: i64,
) -> Result<(), Reason> {
    let primary = &key.primary_key;
    let signed = sig.created().ok_or_else(|| Reason::Malformed {
        kind: "OpenPGP",
        detail: "it has no creation time".into(),
    })?;
    let signed = i64::from(signed.as_secs());
    let revoked =
        key.details.revocation_signatures.iter().find(|r| {
            r.typ() == Some(SignatureType::KeyRevocation) && r.verify_key(primary).is_ok()
        });
    if let Some(revocation) = revoked {
        return Err(key_revoked(primary, revocation));
    }
    valid_at(primary, primary_expiry(key), signed, now)?;
    if let Some(subkey) = subkey {
        let revoked = subkey.signatures.iter().find(|r| {
            r.typ() == Some(SignatureType::SubkeyRevocation)
                && r.verify_subkey_binding(primary, &subkey.key).is_ok()
        });
        if let Some(revocation) = revoked {
            return Err(key_revoked(&subkey.key, revocation));
        }
        let expiry = newest_binding(key, subkey).and_then(Signature::key_expiration_time);
        valid_at(&subkey.key, expiry, signed, now)?;
    }
    let lifetime = sig.signature_expiration_time().map(|d| d.as_secs());
    if let Some(seconds) = lifetime.filter(|&s| s > 0) {
        let until = signed + i64::from(seconds);
        if now >= until {
            return Err(Reason::SignatureExpired(show_time(until)));
        }
    }
    Ok(())
}

fn key_revoked(key: &dyn KeyDetails, revocation: &Signature) -> Reason {
    let reason = revocation
        .revocation_reason_string()
        .map(|text| String::from_utf8_lossy(text).trim().to_string())
        .filter(|text| !text.is_empty())
        .map(|text| format!(": {}", super::display_text(&text)))
        .unwrap_or_default();
    Reason::KeyRevoked {
        fingerprint: format!("{:X}", key.fingerprint()),
        reason,
    }
}

/// Refuses a signature made at `signed` before `key` was made, or at or
/// after its expiry (`lifetime` after its creation; none or zero: never),
/// or when the key has expired by `now`.
fn valid_at(
    key: &dyn KeyDetails,
    lifetime: Option<pgp::types::Duration>,
    signed: i64,
    now: i64,
) -> Result<(), Reason> {
    let fingerprint = || format!("{:X}", key.fingerprint());
    let created = i64::from(key.created_at().as_secs());
    if signed < created {
        return Err(Reason::PredatesKey {
            fingerprint: fingerprint(),
            signed: show_time(signed),
            created: show_time(created),
        });
    }
    let lifetime = lifetime.map(|d| d.as_secs()).filter(|&s| s > 0);
    if let Some(seconds) = lifetime {
        let expiry = created + i64::from(seconds);
        if signed >= expiry || now >= expiry {
            return Err(Reason::KeyExpired {
                fingerprint: fingerprint(),
                at: show_time(expiry),
            });
        }
    }
    Ok(())
}

/// The key-expiration time of the primary key's newest verifying
/// self-signature: a direct-key signature or a user ID certification
/// (not a certification revocation).
fn primary_expiry(key: &SignedPublicKey) -> Option<pgp::types::Duration> {
    let primary = &key.primary_key;
    let direct = key
        .details
        .direct_signatures
        .iter()
        .filter(|s| s.typ() == Some(SignatureType::Key) && s.verify_key(primary).is_ok());
    let certifications = key.details.users.iter().flat_map(|user| {
        user.signatures.iter().filter(move |s| {
            s.is_certification()
                && s.typ() != Some(SignatureType::CertRevocation)
                && s.verify_certification(primary, Tag::UserId, &user.id)
                    .is_ok()
        })
    });
    direct
        .chain(certifications)
        .max_by_key(|s| s.created().map(|t| t.as_secs()))
        .and_then(Signature::key_expiration_time)
}

/// The subkey's newest binding signature that verifies against the
/// primary key.
fn newest_binding<'a>(
    key: &SignedPublicKey,
    subkey: &'a SignedPublicSubKey,
) -> Option<&'a Signature> {
    subkey
        .signatures
        .iter()
        .filter(|s| {
            s.typ() == Some(SignatureType::SubkeyBinding)
                && s.verify_subkey_binding(&key.primary_key, &subkey.key)
                    .is_ok()
        })
        .max_by_key(|s| s.created().map(|t| t.as_secs()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect()
}

#[cfg(test)]
mod tests;
