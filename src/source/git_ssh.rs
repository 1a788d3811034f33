//! SSH credentials for a `--git` remote: the user (`git` when the URL names
//! none, as `ssh` users expect of Git hosts), the `--ssh-key` with its
//! passphrase from `--ssh-key-passphrase-file`, offered once.
//!
//! libgit2 asks its credentials callback again after the server refuses a
//! key; answering with the same key again would loop until the server cuts
//! the connection. So the key is offered once per connection attempt and a
//! second request is answered with nfcron's own error: the key was refused
//! by the host. An encrypted key without a passphrase is refused before any
//! connection, saying so. The passphrase is never formatted anywhere.

use std::io::Read;
use std::path::{Path, PathBuf};

use base64::Engine;
use git2::{Cred, CredentialType};

/// The user when the remote URL names none.
pub const DEFAULT_USER: &str = "git";

/// Private key files larger than this are not keys.
const MAX_KEY_BYTES: u64 = 64 * 1024;

/// A key's passphrase: redacted in `Debug`, never `Display`ed.
#[derive(Clone)]
pub struct Passphrase(String);

impl std::fmt::Debug for Passphrase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Passphrase(***)")
    }
}

impl Passphrase {
    /// Reads `--ssh-key-passphrase-file`: the whole file, one trailing
    /// newline (`\n` or `\r\n`) removed (what `echo` and secret mounts
    /// add); other whitespace is part of the passphrase.
    pub fn read(path: &Path) -> Result<Passphrase, git2::Error> {
        let mut text = String::new();
        std::fs::File::open(path)
            .and_then(|f| f.take(MAX_KEY_BYTES).read_to_string(&mut text))
            .map_err(|e| {
                git2::Error::from_str(&format!(
                    "cannot read --ssh-key-passphrase-file {}: {}",
                    super::display_path(path),
                    io_message(&e)
                ))
            })?;
        let trimmed = text
            .strip_suffix("\r\n")
            .or_else(|| text.strip_suffix('\n'))
            .unwrap_or(&text);
        Ok(Passphrase(trimmed.to_string()))
    }
}

/// The SSH half of the credentials callback for one connection attempt.
#[derive(Debug)]
pub struct SshCredentials {
    key: Option<PathBuf>,
    passphrase: Option<Passphrase>,
    /// Whether the key was already handed to libgit2 on this connection.
    offered: bool,
}

impl SshCredentials {
    /// For `--ssh-key` and `--ssh-key-passphrase-file` (read now, so a
    /// rotated secret is picked up by the next fetch).
    pub fn new(
        key: Option<&Path>,
        passphrase_file: Option<&Path>,
    ) -> Result<SshCredentials, git2::Error> {
        Ok(SshCredentials {
            key: key.map(Path::to_path_buf),
            passphrase: passphrase_file.map(Passphrase::read).transpose()?,
            offered: false,
        })
    }

    /// The answer to libgit2's credentials request, or `None` when it is
    /// not an SSH request nfcron can answer (the caller goes on to the
    /// token, or refuses).
    pub fn answer(
        &mut self,
        url: &str,
        user: Option<&str>,
        allowed: CredentialType,
    ) -> Option<Result<Cred, git2::Error>> {
        // libgit2 asks for a user name alone first when the URL has none.
        if allowed.contains(CredentialType::USERNAME) {
            return Some(Cred::username(user.unwrap_or(DEFAULT_USER)));
        }
        if !allowed.contains(CredentialType::SSH_KEY) {
            return None;
        }
        let key = self.key.as_deref()?;
        let user = user.unwrap_or(DEFAULT_USER);
        let shown = super::display_path(key);
        if self.offered {
            let host = match super::git::origin(url) {
                Some((_, host, port)) => format!("{host} port {port}"),
                None => "the host".to_string(),
            };
            tracing::debug!(key = %shown, %user, %host, "SSH key refused by the host");
            return Some(Err(git2::Error::new(
                git2::ErrorCode::Auth,
                git2::ErrorClass::Ssh,
                format!(
                    "the SSH key {shown} was refused by {host} for user `{user}`: is its public key authorized there (and is the user right)?"
                ),
            )));
        }
        if self.passphrase.is_none() {
            match encrypted(key) {
                Ok(false) => {}
                Ok(true) => {
                    return Some(Err(git2::Error::from_str(&format!(
                        "the SSH key {shown} is encrypted; give its passphrase with --ssh-key-passphrase-file"
                    ))))
                }
                Err(e) => {
                    return Some(Err(git2::Error::from_str(&format!(
                        "cannot read the SSH key {shown}: {}",
                        io_message(&e)
                    ))))
                }
            }
        }
        self.offered = true;
        let passphrase = self.passphrase.as_ref().map(|p| p.0.as_str());
        Some(Cred::ssh_key(user, None, key, passphrase))
    }
}

/// Whether a private key file is encrypted: OpenSSH's own format (a cipher
/// other than `none`), legacy PEM (`Proc-Type: 4,ENCRYPTED`) or PKCS#8
/// `ENCRYPTED PRIVATE KEY`.
pub fn encrypted(path: &Path) -> std::io::Result<bool> {
    let mut text = String::new();
    std::fs::File::open(path)?
        .take(MAX_KEY_BYTES)
        .read_to_string(&mut text)?;
    Ok(text_is_encrypted(&text))
}

fn text_is_encrypted(text: &str) -> bool {
    if text.contains("Proc-Type: 4,ENCRYPTED") || text.contains("BEGIN ENCRYPTED PRIVATE KEY") {
        return true;
    }
    let Some(body) = text
        .split_once("-----BEGIN OPENSSH PRIVATE KEY-----")
        .and_then(|(_, rest)| rest.split_once("-----END OPENSSH PRIVATE KEY-----"))
        .map(|(body, _)| body.split_whitespace().collect::<String>())
    else {
        return false;
    };
    let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(body) else {
        return false;
    };
    // "openssh-key-v1\0", then the cipher name as an SSH string.
    let Some(rest) = bytes.strip_prefix(b"openssh-key-v1\0") else {
        return false;
    };
    let Some(len) = rest
        .get(..4)
        .and_then(|l| l.try_into().ok())
        .map(u32::from_be_bytes)
    else {
        return false;
    };
    rest.get(4..4 + len as usize)
        .is_some_and(|cipher| cipher != b"none")
}

use super::dir::io_message;

#[cfg(test)]
mod tests {
    use super::*;

    fn openssh(cipher: &str) -> String {
        let mut body = b"openssh-key-v1\0".to_vec();
        body.extend_from_slice(&(cipher.len() as u32).to_be_bytes());
        body.extend_from_slice(cipher.as_bytes());
        body.extend_from_slice(&[0; 32]);
        let b64 = base64::engine::general_purpose::STANDARD.encode(body);
        format!("-----BEGIN OPENSSH PRIVATE KEY-----\n{b64}\n-----END OPENSSH PRIVATE KEY-----\n")
    }

    #[test]
    fn encrypted_keys_are_recognised_in_every_format() {
        assert!(!text_is_encrypted(&openssh("none")));
        assert!(text_is_encrypted(&openssh("aes256-ctr")));
        assert!(text_is_encrypted(
            "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,00\n\nAAAA\n-----END RSA PRIVATE KEY-----\n"
        ));
        assert!(text_is_encrypted(
            "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n"
        ));
        assert!(!text_is_encrypted(
            "-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----\n"
        ));
    }

    #[test]
    fn a_passphrase_file_loses_one_trailing_newline_only() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("p");
        for (written, read) in [
            ("s3cret\n", "s3cret"),
            ("s3cret\r\n", "s3cret"),
            (" s3cret \n\n", " s3cret \n"),
            ("s3cret", "s3cret"),
        ] {
            std::fs::write(&path, written).expect("write");
            assert_eq!(Passphrase::read(&path).expect("read").0, read);
        }
        assert_eq!(
            format!("{:?}", Passphrase::read(&path).expect("read")),
            "Passphrase(***)"
        );
    }

    #[test]
    fn the_user_defaults_to_git_and_the_key_is_offered_once() {
        let dir = tempfile::tempdir().expect("dir");
        let key = dir.path().join("id");
        std::fs::write(&key, openssh("none")).expect("write");
        let mut ssh = SshCredentials::new(Some(&key), None).expect("new");
        let url = "ssh://h.example:2222/r.git";
        let user = ssh
            .answer(url, None, CredentialType::USERNAME)
            .expect("answered")
            .expect("cred");
        assert_eq!(user.credtype(), libgit2_sys::GIT_CREDTYPE_USERNAME);
        assert!(ssh
            .answer(url, Some("git"), CredentialType::SSH_KEY)
            .expect("answered")
            .is_ok());
        let again = ssh
            .answer(url, Some("git"), CredentialType::SSH_KEY)
            .expect("answered")
            .err()
            .expect("refused");
        assert!(
            again
                .message()
                .contains("was refused by h.example port 2222 for user `git`"),
            "{}",
            again.message()
        );
        assert!(ssh
            .answer(url, None, CredentialType::USER_PASS_PLAINTEXT)
            .is_none());
    }

    #[test]
    fn an_encrypted_key_without_a_passphrase_says_so() {
        let dir = tempfile::tempdir().expect("dir");
        let key = dir.path().join("id");
        std::fs::write(&key, openssh("aes256-ctr")).expect("write");
        let mut ssh = SshCredentials::new(Some(&key), None).expect("new");
        let refused = ssh
            .answer("ssh://h/r", Some("git"), CredentialType::SSH_KEY)
            .expect("answered")
            .err()
            .expect("refused");
        assert!(
            refused
                .message()
                .contains("is encrypted; give its passphrase with --ssh-key-passphrase-file"),
            "{}",
            refused.message()
        );
    }
}
