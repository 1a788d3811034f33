//! Manifests in a Git repository (git2): a bare cache that is cloned once
//! and then fetched, and manifests read straight from the branch tip's tree
//! (nothing is checked out, so nothing can be edited under nfcron's feet).
//! The tip's commit id is the source revision.
//!
//! A failed fetch keeps the last good revision and says so: it is never
//! taken for "all manifests gone". With `--verify-signatures`, a tip whose
//! signature is not accepted ([`super::verify`]) yields no snapshot at all,
//! only [`GitError::Unverified`].

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use git2::{Cred, CredentialType, FetchOptions, RemoteCallbacks, Repository};

pub use super::git_tree::read_tree;
use super::SourceFile;
use crate::secret::Token;

#[derive(Debug, thiserror::Error)]
pub enum GitError {
    /// libgit2's message once: as the error's text, not again as its
    /// cause (a `#[source]` would print it twice).
    #[error("git: {}", .0.message())]
    Git(git2::Error),
    /// A network operation on the remote failed: what nfcron was doing,
    /// then why.
    #[error("{doing}")]
    Remote {
        doing: String,
        #[source]
        cause: RemoteCause,
    },
    /// Reading the fetched tree failed.
    #[error("cannot read `{path}` at revision {revision}: {}", .error.message())]
    Read {
        path: String,
        revision: String,
        error: git2::Error,
    },
    #[error(transparent)]
    Cache(#[from] super::git_cache::CacheError),
    #[error("the remote `{0}` has no branches (an empty repository?): push a first commit, or name a branch with --branch")]
    EmptyRemote(String),
    #[error("the remote `{0}` names no default branch (its HEAD): name one with --branch")]
    NoDefaultBranch(String),
    #[error(transparent)]
    Url(#[from] GitUrlError),
    #[error("--git-path `{0}` leads out of the repository")]
    PathEscapes(String),
    #[error("--git-path `{path}` does not exist at revision {revision}")]
    PathNotFound { path: String, revision: String },
    #[error("--git-path `{path}` is not a directory at revision {revision}")]
    PathNotADirectory { path: String, revision: String },
    #[error("--git-path `{path}` at revision {revision} is {why}")]
    PathLink {
        path: String,
        revision: String,
        why: String,
    },
    /// A blob the tree names is not in the local object store: a partial
    /// clone, or a damaged cache.
    #[error(
        "`{path}` at revision {revision} is not in the local repository (its blob is missing)"
    )]
    MissingBlob { path: String, revision: String },
    /// `--base` in a partial clone (`--filter=blob:none`) that lacks a
    /// blob it needs: planning without it would be wrong.
    #[error("--base: `{path}` at revision {revision} is not in the local repository (a partial clone, `--filter=blob:none`?), and a plan without it would be wrong; fetch without a filter first: `git fetch --refetch --no-filter origin` (or clone without `--filter`)")]
    BaseBlobMissing { path: String, revision: String },
    #[error("branch `{0}` not found in the remote")]
    NoBranch(String),
    #[error(transparent)]
    HostKey(Box<super::known_hosts::HostKeyRefused>),
    #[error("cannot read the known-hosts file {path}")]
    KnownHosts {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The tip's signature is not accepted (`--verify-signatures`):
    /// nothing of it may be applied.
    #[error(transparent)]
    Unverified(Box<super::verify::Refusal>),
    #[error("--base needs a work tree, not a bare repository")]
    BareRepository,
    #[error("cannot tell the current directory")]
    CurrentDir(#[source] std::io::Error),
    #[error("the manifests path is outside the Git work tree")]
    OutsideWorkTree,
    #[error("--base {base}: {}", .source.message())]
    BadBase {
        base: String,
        #[source]
        source: git2::Error,
    },
}

impl From<git2::Error> for GitError {
    fn from(e: git2::Error) -> Self {
        // libgit2 replaces a refused host key's message with its own.
        if let Some(refused) = super::known_hosts::take_refusal(&e) {
            return GitError::HostKey(Box::new(refused));
        }
        GitError::Git(e)
    }
}

/// Why talking to the remote failed.
#[derive(Debug, thiserror::Error)]
pub enum RemoteCause {
    /// libgit2's own words, once.
    #[error("{}", .0.message())]
    Git(git2::Error),
    /// A fresh clone that is not whole (what is missing, in words).
    #[error("{0}")]
    Incomplete(String),
    /// `timeout` as the user wrote it (`60s`).
    #[error("{host} did not answer within {timeout} (--git-timeout)")]
    Timeout { host: String, timeout: String },
    #[error("{host} refused the token (HTTP 401 Unauthorized, user `{user}`); it was sent once and is not tried again: check NFCRON_GIT_TOKEN")]
    TokenRefused { host: String, user: String },
    #[error("credentials withheld: `{asked}` is not the origin of --git `{configured}` (a redirect to another host?)")]
    Withheld { asked: String, configured: String },
    /// libgit2 replaces a refused host key's message with its own.
    #[error(transparent)]
    HostKey(Box<super::known_hosts::HostKeyRefused>),
    #[error("the TLS certificate of {host} is not trusted: no certificate authority in the trust store signed it, or it has expired (for a private CA, set SSL_CERT_FILE to its PEM certificate)")]
    CertificateUntrusted { host: String },
    #[error("the TLS certificate of {host} is not valid for the host name `{name}`: it was issued for other names (use the name the certificate carries in --git)")]
    CertificateNameMismatch { host: String, name: String },
}

/// A `--git` URL nfcron refuses before touching the network.
#[derive(Debug, thiserror::Error)]
pub enum GitUrlError {
    #[error("--git `{0}` is not a valid URL")]
    BadUrl(String),
    #[error("--git `{0}` uses plain http to a host that is not loopback; a token would travel in clear text. Use https or ssh")]
    Insecure(String),
    #[error("--git `{url}` uses the unsupported scheme `{scheme}`; use https, ssh, file, a local path (or http to a loopback address)")]
    UnsupportedScheme { url: String, scheme: String },
}

/// How a `--git` remote is spelled.
enum Remote {
    /// `scheme://...`
    Url(url::Url),
    /// `[user@]host:path`, SSH in scp syntax.
    Scp { host: String },
    /// A path on this machine.
    Local,
}

fn parse_remote(raw: &str) -> Result<Remote, GitUrlError> {
    if raw.contains("://") {
        return url::Url::parse(raw)
            .map(Remote::Url)
            .map_err(|_| GitUrlError::BadUrl(redact(raw)));
    }
    // Git's rule: a colon before any slash makes it scp syntax.
    match raw.split_once(':') {
        Some((before, _)) if !before.contains('/') && before.len() > 1 => {
            let host = before.rsplit_once('@').map_or(before, |(_, h)| h);
            Ok(Remote::Scp {
                host: host.trim_matches(['[', ']']).to_ascii_lowercase(),
            })
        }
        _ => Ok(Remote::Local),
    }
}

/// `raw` with any `user[:password]@` shown as `***@`: a token may be
/// written there.
fn redact(raw: &str) -> String {
    let (scheme, rest) = raw.split_once("://").unwrap_or(("", raw));
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let shown = match rest[..authority_end].rfind('@') {
        Some(at) => format!("***@{}", &rest[at + 1..]),
        None => rest.to_string(),
    };
    let shown = if scheme.is_empty() {
        shown
    } else {
        format!("{scheme}://{shown}")
    };
    super::display_bytes(shown.as_bytes())
        .chars()
        .take(256)
        .collect()
}

/// Scheme, host and port of a remote URL (`ssh` for its variants and scp
/// syntax, default ports filled in); `None` for local paths and URLs
/// without a host. Credentials go only to the configured remote's origin.
pub fn origin(raw: &str) -> Option<(String, String, u16)> {
    match parse_remote(raw).ok()? {
        Remote::Url(url) => {
            let scheme = match url.scheme() {
                "git+ssh" | "ssh+git" => "ssh",
                other => other,
            };
            let host = url.host_str()?.to_ascii_lowercase();
            let port =
                url.port_or_known_default()
                    .or(if scheme == "ssh" { Some(22) } else { None })?;
            Some((scheme.to_string(), host, port))
        }
        // scp syntax has no port: always 22.
        Remote::Scp { host } => Some(("ssh".into(), host, 22)),
        Remote::Local => None,
    }
}

/// Whether credentials for the remote configured as `configured` may be
/// given to `asked` (the URL libgit2 is talking to, after any redirect):
/// the same scheme, host and port only.
pub fn same_origin(configured: &str, asked: &str) -> bool {
    match (origin(configured), origin(asked)) {
        (Some(a), Some(b)) => a == b,
        _ => false,
    }
}

/// Refuses a `--git` remote nfcron will not use: plain http to a host that
/// is not loopback (the token would go out in clear), and any scheme but
/// https, ssh and file. scp-style `host:path` and local paths are fine.
pub fn check_url(raw: &str) -> Result<(), GitUrlError> {
    let Remote::Url(url) = parse_remote(raw)? else {
        return Ok(());
    };
    match url.scheme() {
        "https" | "ssh" | "git+ssh" | "ssh+git" | "file" => Ok(()),
        "http" if crate::net::is_loopback(&url) => Ok(()),
        "http" => Err(GitUrlError::Insecure(redact(raw))),
        scheme => Err(GitUrlError::UnsupportedScheme {
            url: redact(raw),
            scheme: scheme.chars().take(32).collect(),
        }),
    }
}

#[derive(Debug, Clone, Default)]
pub struct GitAuth {
    /// HTTPS token (`NFCRON_GIT_TOKEN`).
    pub token: Option<Token>,
    /// SSH private key (`--ssh-key`).
    pub ssh_key: Option<PathBuf>,
    /// Host keys SSH servers must present (`--known-hosts`); no
    /// trust-on-first-use.
    pub known_hosts: Option<PathBuf>,
    /// The `--ssh-key`'s passphrase, in a file
    /// (`--ssh-key-passphrase-file`); read at each fetch, never logged.
    pub ssh_key_passphrase_file: Option<PathBuf>,
}

#[derive(Debug, Clone)]
pub struct GitSource {
    pub url: String,
    /// `None`: the remote's default branch.
    pub branch: Option<String>,
    /// Where the manifests are in the repository.
    pub subdir: String,
    pub cache: PathBuf,
    pub auth: GitAuth,
    /// `--git-timeout`: connecting, and each read or write of a transfer.
    pub timeout: Duration,
    /// `--verify-signatures`: the keys a tip must be signed by; `None`:
    /// signatures are not looked at.
    pub signers: Option<Arc<super::verify::Signers>>,
}

/// The manifests of one commit.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub revision: String,
    pub files: Vec<SourceFile>,
}

impl GitSource {
    /// Clones (once) or fetches, then reads the branch tip. Blocking: run
    /// it off the async runtime. Runs on one cache are serialised by a
    /// lock; a cache that cannot be trusted is cloned afresh, once.
    pub fn sync(&self) -> Result<Snapshot, GitError> {
        check_url(&self.url)?;
        set_timeouts(self.timeout);
        let cache = super::git_cache::Cache::lock(&self.cache)?;
        let recorded = recorded_url(&self.url);
        let found = match cache.open(&recorded) {
            Ok(repo) => match self.update(&repo, false) {
                Ok((branch, tip)) => Ok((repo, branch, tip)),
                Err(Failure::Fatal(e)) => return Err(e),
                Err(Failure::Cache(why)) => Err(Some(why)),
            },
            Err(why) => Err(why),
        };
        let (repo, branch, tip) = match found {
            Ok(found) => found,
            Err(why) => {
                if let Some(why) = why {
                    tracing::warn!(
                        cache = %super::display_path(cache.path()),
                        reason = %why,
                        "the Git cache is unusable; cloning it afresh"
                    );
                }
                let fresh = cache.fresh(&recorded)?;
                let (branch, tip) = self.update(&fresh.repo, true).map_err(|e| match e {
                    Failure::Fatal(e) => e,
                    // A fresh clone that is not whole: the remote's fault.
                    Failure::Cache(why) => GitError::Remote {
                        doing: format!("cannot clone `{}`", redact(&self.url)),
                        cause: RemoteCause::Incomplete(why),
                    },
                })?;
                (cache.swap_in(fresh)?, branch, tip)
            }
        };
        let packs = super::git_cache::packs(&repo).len();
        if packs > super::git_cache::MAX_PACKS {
            match super::git_cache::repack(&repo) {
                Ok(removed) => tracing::info!(packs, removed, "repacked the Git cache"),
                Err(e) => {
                    tracing::warn!(error = %e.message(), "cannot repack the Git cache; it still works")
                }
            }
        }
        let commit = repo.find_commit(tip).map_err(|error| GitError::Read {
            path: format!("refs/remotes/origin/{branch}"),
            revision: tip.to_string(),
            error,
        })?;
        // Before anything of the tip is read: a refused tip yields nothing.
        if let Some(signers) = &self.signers {
            signers
                .check(&signed_commit(&repo, &commit)?)
                .map_err(|refusal| GitError::Unverified(Box::new(refusal)))?;
        }
        let subdir = normalize_git_path(&self.subdir)?;
        let files = read_tree(&repo, &commit, &subdir, &subdir).map_err(|e| match e {
            GitError::Git(error) => GitError::Read {
                path: if subdir.is_empty() {
                    "/".into()
                } else {
                    subdir.clone()
                },
                revision: tip.to_string(),
                error,
            },
            e => e,
        })?;
        Ok(Snapshot {
            revision: tip.to_string(),
            files,
        })
    }

    /// Fetches the followed branch into `repo` and checks that its tip can
    /// be read. A failure that says the cache is damaged (not the remote,
    /// the network or the credentials) is [`Failure::Cache`].
    fn update(&self, repo: &Repository, fresh: bool) -> Result<(String, git2::Oid), Failure> {
        let url = redact(&self.url);
        // Fetched through an anonymous remote: the URL (and any password
        // in it) is used, never written into the cache's config.
        let mut remote = repo
            .remote_anonymous(&self.url)
            .map_err(|e| Failure::Fatal(GitError::Git(e)))?;
        let branch = match &self.branch {
            Some(b) => b.clone(),
            None => {
                let seen = Seen::default();
                let callbacks = self.callbacks(&seen).map_err(Failure::Fatal)?;
                let doing = format!("cannot list the branches of `{url}`");
                let connection = remote
                    .connect_auth(git2::Direction::Fetch, Some(callbacks), None)
                    .map_err(|e| Failure::Fatal(self.remote_error(doing.clone(), e, &seen)))?;
                let heads = connection
                    .list()
                    .map_err(|e| Failure::Fatal(self.remote_error(doing.clone(), e, &seen)))?;
                if !heads.iter().any(|h| h.name().starts_with("refs/heads/")) {
                    return Err(Failure::Fatal(GitError::EmptyRemote(url)));
                }
                let head = connection
                    .default_branch()
                    .map_err(|_| Failure::Fatal(GitError::NoDefaultBranch(url.clone())))?;
                let head = head
                    .as_str()
                    .map_err(|_| Failure::Fatal(GitError::NoDefaultBranch(url.clone())))?
                    .to_string();
                head.strip_prefix("refs/heads/")
                    .unwrap_or(&head)
                    .to_string()
            }
        };
        let seen = Seen::default();
        let mut options = FetchOptions::new();
        options.remote_callbacks(self.callbacks(&seen).map_err(Failure::Fatal)?);
        let refspec = format!("+refs/heads/{branch}:refs/remotes/origin/{branch}");
        if let Err(e) = remote.fetch(&[refspec.as_str()], Some(&mut options), None) {
            if !fresh && is_cache_damage(&e) {
                return Err(Failure::Cache(e.message().to_string()));
            }
            let doing = if fresh {
                format!("cannot clone branch `{branch}` of `{url}`")
            } else {
                format!("cannot fetch branch `{branch}` from `{url}`")
            };
            return Err(Failure::Fatal(self.remote_error(doing, e, &seen)));
        }
        // A branch the remote no longer has leaves the cached
        // `refs/remotes/origin/<branch>` behind: never plan from it. What
        // the remote advertised in this fetch decides, as on a fresh cache.
        let wanted = format!("refs/heads/{branch}");
        let advertised = remote
            .list()
            .map_err(|e| Failure::Fatal(GitError::Git(e)))?
            .iter()
            .any(|head| head.name() == wanted);
        if !advertised {
            return Err(Failure::Fatal(GitError::NoBranch(branch)));
        }
        let tip = repo
            .find_reference(&format!("refs/remotes/origin/{branch}"))
            .and_then(|r| r.peel_to_commit())
            .map(|c| c.id())
            .map_err(|e| {
                Failure::Cache(format!(
                    "the fetched tip of `{branch}` cannot be read: {}",
                    e.message()
                ))
            })?;
        super::git_cache::check_tip(repo, tip).map_err(|e| {
            Failure::Cache(format!(
                "an object of revision {tip} cannot be read: {}",
                e.message()
            ))
        })?;
        Ok((branch, tip))
    }

    /// `e` from a network operation, in nfcron's words: a refused token,
    /// withheld credentials and a timeout are named as such.
    fn remote_error(&self, doing: String, e: git2::Error, seen: &Seen) -> GitError {
        let seen = seen.lock().expect("credentials state");
        let cause = if let Some((host, user)) = seen.refused.clone() {
            RemoteCause::TokenRefused { host, user }
        } else if let Some((asked, configured)) = seen.withheld.clone() {
            RemoteCause::Withheld { asked, configured }
        } else if let Some(refused) = super::known_hosts::take_refusal(&e) {
            RemoteCause::HostKey(Box::new(refused))
        } else if e.class() == git2::ErrorClass::Ssl && e.message().contains("does not match") {
            // libgit2 (OpenSSL): "hostname does not match certificate".
            let name = origin(&self.url)
                .map(|(_, name, _)| name)
                .unwrap_or_default();
            RemoteCause::CertificateNameMismatch {
                host: host_of(&self.url),
                name,
            }
        } else if e.class() == git2::ErrorClass::Ssl
            && e.message().contains("certificate is invalid")
        {
            // libgit2 (OpenSSL): "the SSL certificate is invalid", any
            // failed chain verification.
            RemoteCause::CertificateUntrusted {
                host: host_of(&self.url),
            }
        } else if is_timeout(&e) {
            RemoteCause::Timeout {
                host: host_of(&self.url),
                timeout: humantime::format_duration(self.timeout).to_string(),
            }
        } else {
            RemoteCause::Git(e)
        };
        GitError::Remote { doing, cause }
    }

    fn callbacks(&self, seen: &Seen) -> Result<RemoteCallbacks<'static>, GitError> {
        let mut callbacks = RemoteCallbacks::new();
        let auth = self.auth.clone();
        let configured = self.url.clone();
        let seen = seen.clone();
        let mut ssh = super::git_ssh::SshCredentials::new(
            auth.ssh_key.as_deref(),
            auth.ssh_key_passphrase_file.as_deref(),
        )?;
        callbacks.credentials(move |url, user, allowed| {
            // A redirect may take libgit2 to another host: the token and
            // key are for the configured origin only.
            if !same_origin(&configured, url) {
                let (configured, asked) = (redact(&configured), redact(url));
                tracing::warn!(%configured, %asked, "credentials withheld from another origin");
                seen.lock().expect("credentials state").withheld =
                    Some((asked.clone(), configured.clone()));
                return Err(git2::Error::from_str(&format!(
                    "credentials withheld: `{asked}` is not the origin of --git `{configured}` (a redirect to another host?)"
                )));
            }
            if let Some(answer) = ssh.answer(url, user, allowed) {
                return answer;
            }
            if allowed.contains(CredentialType::USER_PASS_PLAINTEXT) {
                if let Some(token) = &auth.token {
                    // A user named in the URL is honoured.
                    let user = user.unwrap_or("x-access-token");
                    let mut seen = seen.lock().expect("credentials state");
                    // Asked again: the server answered the token with 401.
                    // Replaying it only delays the same answer.
                    if seen.token_sent {
                        let host = host_of(url);
                        seen.refused = Some((host.clone(), user.to_string()));
                        return Err(git2::Error::from_str(&format!(
                            "{host} refused the token"
                        )));
                    }
                    seen.token_sent = true;
                    return Cred::userpass_plaintext(user, token.expose());
                }
            }
            Err(git2::Error::from_str(
                "the remote asks for credentials nfcron was not given",
            ))
        });
        let known =
            match &self.auth.known_hosts {
                Some(path) => Some(super::known_hosts::KnownHosts::load(path).map_err(
                    |source| GitError::KnownHosts {
                        path: path.clone(),
                        source,
                    },
                )?),
                None => None,
            };
        let (scheme, host, port) = origin(&self.url).unwrap_or_default();
        // libgit2 negotiates a host key type the file lists for the host;
        // the guard lives as long as the callbacks.
        let home = match (&known, scheme.as_str()) {
            (Some(known), "ssh") => {
                match super::known_hosts::prefer_listed_key_types(known, &host, port) {
                    Ok(home) => Some(home),
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot steer the SSH host key type; the server's preferred one is checked");
                        None
                    }
                }
            }
            _ => None,
        };
        super::known_hosts::clear_refusal();
        callbacks.certificate_check(move |cert, host| {
            let _home = &home;
            // TLS certificates are checked by libgit2 against the system
            // store; SSH host keys must be in --known-hosts.
            let Some(hostkey) = cert.as_hostkey() else {
                return Ok(git2::CertificateCheckStatus::CertificatePassthrough);
            };
            super::known_hosts::check_certificate(known.as_ref(), host, port, hostkey.hostkey())
                .map(|()| git2::CertificateCheckStatus::CertificateOk)
        });
        Ok(callbacks)
    }
}

/// What `commit` offers for verification: its signature (if any), the
/// bytes it covers, and the committer.
fn signed_commit(
    repo: &Repository,
    commit: &git2::Commit<'_>,
) -> Result<super::verify::SignedCommit, GitError> {
    let read_error = |error| GitError::Read {
        path: "(the commit's signature)".into(),
        revision: commit.id().to_string(),
        error,
    };
    let (signature, payload) = match repo.extract_signature(&commit.id(), None) {
        Ok((signature, payload)) => (Some(signature.to_vec()), payload.to_vec()),
        // Unsigned: there is nothing to check the payload against.
        Err(e) if e.code() == git2::ErrorCode::NotFound => (None, Vec::new()),
        Err(e) => return Err(read_error(e)),
    };
    let committer = commit.committer();
    Ok(super::verify::SignedCommit {
        commit: commit.id().to_string(),
        // Shown on /readyz and in logs: escaped like every name from the
        // repository.
        committer_email: super::display_bytes(committer.email_bytes()),
        committer_time: committer.when().seconds(),
        signature,
        payload,
    })
}

/// How an update of the cache failed.
enum Failure {
    /// The cache is damaged (why): clone afresh.
    Cache(String),
    /// Anything else ends the run.
    Fatal(GitError),
}

/// What the credentials callback saw during one operation.
#[derive(Debug, Default)]
struct AuthSeen {
    /// The token went out once.
    token_sent: bool,
    /// Host and user the token was refused for.
    refused: Option<(String, String)>,
    /// A redirect asked for credentials from another origin.
    withheld: Option<(String, String)>,
}

type Seen = Arc<Mutex<AuthSeen>>;

/// libgit2's socket timeouts (process-wide), for HTTP(S) and SSH alike:
/// connecting, and each read or write once connected.
fn set_timeouts(timeout: Duration) {
    let ms = i32::try_from(timeout.as_millis())
        .unwrap_or(i32::MAX)
        .max(1);
    // SAFETY: libgit2 stores two integers under its settings lock.
    unsafe {
        let _ = git2::opts::set_server_connect_timeout_in_milliseconds(ms);
        let _ = git2::opts::set_server_timeout_in_milliseconds(ms);
    }
}

fn is_timeout(e: &git2::Error) -> bool {
    e.code() == git2::ErrorCode::Timeout || e.message().to_ascii_lowercase().contains("timed out")
}

/// Errors of a fetch that say the cache's objects or refs are damaged,
/// not that the remote or the network failed.
fn is_cache_damage(e: &git2::Error) -> bool {
    use git2::ErrorClass as C;
    !is_timeout(e)
        && matches!(
            e.class(),
            C::Odb | C::Indexer | C::Object | C::Zlib | C::Reference | C::Tree
        )
}

/// `host:port` of a remote, for messages (the URL, redacted, for a local
/// path).
fn host_of(raw: &str) -> String {
    match origin(raw) {
        Some((_, host, port)) => format!("{host}:{port}"),
        None => redact(raw),
    }
}

/// The remote as recorded in the cache's config: without any password
/// (a token may be written there).
pub fn recorded_url(raw: &str) -> String {
    match parse_remote(raw) {
        Ok(Remote::Url(mut url)) if url.password().is_some() => {
            let _ = url.set_password(None);
            url.to_string()
        }
        _ => raw.to_string(),
    }
}

/// `--git-path` as a path inside the tree: `./`, empty parts and a
/// trailing `/` dropped, `a/../b` resolved; `""` for the root. A `..` that
/// climbs out of the repository is refused.
pub fn normalize_git_path(raw: &str) -> Result<String, GitError> {
    let mut parts: Vec<&str> = Vec::new();
    for part in raw.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if parts.pop().is_none() {
                    return Err(GitError::PathEscapes(raw.to_string()));
                }
            }
            part => parts.push(part),
        }
    }
    Ok(parts.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_only_for_the_configured_scheme_host_and_port() {
        let https = "https://git.example.com/acme/jobs.git";
        assert!(same_origin(
            https,
            "https://x-access-token@GIT.example.com:443/acme/jobs.git"
        ));
        assert!(!same_origin(
            https,
            "https://evil.example.com/acme/jobs.git"
        ));
        assert!(!same_origin(
            https,
            "https://git.example.com:8443/acme/jobs.git"
        ));
        assert!(!same_origin(https, "http://git.example.com/acme/jobs.git"));
        let loopback = "http://127.0.0.1:8080/r.git";
        assert!(same_origin(loopback, "http://127.0.0.1:8080/other.git"));
        assert!(!same_origin(loopback, "http://127.0.0.1:8081/r.git"));
        let scp = "git@github.com:acme/jobs.git";
        assert!(same_origin(scp, scp));
        assert!(same_origin(scp, "ssh://git@github.com/acme/jobs.git"));
        assert!(same_origin(
            "ssh://git@h:2222/r.git",
            "git+ssh://git@h:2222/r.git"
        ));
        assert!(!same_origin("ssh://git@h:2222/r.git", scp));
        assert!(!same_origin("/srv/repo", "/srv/repo"));
    }
}
