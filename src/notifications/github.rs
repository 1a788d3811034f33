//! GitHub commit statuses: after an applying run on a revision, one
//! status per project (`nfcron/<project>`) on that commit, `success` or
//! `failure`, through `POST /repos/{owner}/{repo}/statuses/{sha}`.

use std::collections::BTreeMap;

use reqwest::header::{HeaderMap, HeaderName, HeaderValue, ACCEPT, AUTHORIZATION, CONTENT_TYPE};
use url::Url;

use super::deliver::Outgoing;
use crate::apply::Outcome;
use crate::plan::{Action, Kind, Plan};
use crate::secret::Token;

/// Where statuses go, resolved once.
#[derive(Debug, Clone)]
pub struct Config {
    /// `GITHUB_API_URL` (https, or http to loopback), default GitHub's.
    pub api: Url,
    /// `GITHUB_TOKEN`; sent in the Authorization header and nowhere else.
    pub token: Token,
    /// `owner/name`, checked to be two plain path segments.
    pub repo: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("--github-status needs a token: set GITHUB_TOKEN")]
    NoToken,
    #[error("--github-status cannot tell the repository: pass --github-repo OWNER/NAME (or set GITHUB_REPOSITORY)")]
    NoRepo,
    #[error("--github-repo `{0}` is not OWNER/NAME")]
    BadRepo(String),
    #[error("GITHUB_API_URL {0}: use https:// (or http:// to a loopback address)")]
    BadApi(String),
}

impl Config {
    /// `repo` from `--github-repo`, else `GITHUB_REPOSITORY`, else a
    /// github.com Git URL of the source.
    pub fn resolve(
        repo: Option<String>,
        env: impl Fn(&str) -> Option<String>,
        git_url: Option<&str>,
    ) -> Result<Config, ConfigError> {
        let token = env("GITHUB_TOKEN")
            .and_then(|t| Token::new(&t))
            .ok_or(ConfigError::NoToken)?;
        let raw_api = env("GITHUB_API_URL").unwrap_or_else(|| "https://api.github.com".into());
        let api = Url::parse(raw_api.trim())
            .ok()
            .filter(|u| u.scheme() == "https" || crate::api::is_loopback(u))
            .filter(|u| matches!(u.scheme(), "https" | "http"))
            .ok_or_else(|| ConfigError::BadApi(shown_api(&raw_api)))?;
        let repo = repo
            .or_else(|| env("GITHUB_REPOSITORY"))
            .or_else(|| git_url.and_then(repo_of_git_url))
            .ok_or(ConfigError::NoRepo)?;
        if !is_repo(&repo) {
            return Err(ConfigError::BadRepo(crate::source::display_bytes(
                repo.as_bytes(),
            )));
        }
        Ok(Config { api, token, repo })
    }
}

/// A refused `GITHUB_API_URL` as an error shows it: without a
/// `user:password@` part, escaped.
fn shown_api(raw: &str) -> String {
    match Url::parse(raw.trim()) {
        Ok(mut url) => {
            let _ = url.set_username("");
            let _ = url.set_password(None);
            crate::source::display_bytes(url.as_str().as_bytes())
        }
        Err(_) => "(not a URL)".to_string(),
    }
}

fn is_repo(repo: &str) -> bool {
    let mut parts = repo.split('/');
    let plain = |p: Option<&str>| {
        p.is_some_and(|p| {
            !p.is_empty()
                && p != "."
                && p != ".."
                && p.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        })
    };
    plain(parts.next()) && plain(parts.next()) && parts.next().is_none()
}

/// `owner/name` of `https://github.com/owner/name(.git)`,
/// `ssh://git@github.com/owner/name.git` or `git@github.com:owner/name.git`.
pub fn repo_of_git_url(url: &str) -> Option<String> {
    let path = match Url::parse(url) {
        Ok(u) if u.host_str() == Some("github.com") => u.path().trim_start_matches('/').to_string(),
        Ok(_) => return None,
        Err(_) => url.strip_prefix("git@github.com:")?.to_string(),
    };
    let repo = path.trim_end_matches('/').trim_end_matches(".git");
    is_repo(repo).then(|| repo.to_string())
}

/// One commit status to set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    /// `None` for a run that could not place its problem in a project (a
    /// manifest too broken to name one): context `nfcron` alone.
    pub project: Option<String>,
    /// `success` or `failure`.
    pub state: &'static str,
    /// Under 140 characters, as GitHub requires.
    pub description: String,
}

impl Status {
    /// `nfcron/<project>`, or `nfcron` for the run as a whole.
    pub fn context(&self) -> String {
        match &self.project {
            Some(project) => format!("nfcron/{project}"),
            None => "nfcron".to_string(),
        }
    }
}

/// The status of each project this run planned: `failure` when one of its
/// jobs failed, was refused (now or before), is invalid, or was not sent,
/// or when pruning was blocked or a manifest too broken to name its
/// project is invalid (then every project fails, and with no project at
/// all, the run's own `nfcron` context); `success` otherwise.
pub fn statuses(plan: &Plan, outcomes: &[Outcome]) -> Vec<Status> {
    let mut loose_invalid = 0;
    let mut counts: BTreeMap<String, Counts> = BTreeMap::new();
    for (i, step) in plan.steps.iter().enumerate() {
        let Some(key) = &step.key else {
            loose_invalid += usize::from(matches!(step.kind, Kind::Invalid { .. }));
            continue;
        };
        let c = counts.entry(key.project.clone()).or_default();
        match (outcomes.get(i), &step.kind) {
            (Some(Outcome::Applied), _) => c.applied += 1,
            (Some(Outcome::Failed(_)) | Some(Outcome::NotAttempted), _) => c.failed += 1,
            (Some(Outcome::Rejected(_)), _) | (_, Kind::Rejected { .. }) => c.refused += 1,
            (_, Kind::Invalid { .. }) => c.invalid += 1,
            _ if step.action() == Action::Unchanged => c.unchanged += 1,
            _ => {}
        }
    }
    let run_wide = RunWide {
        prune_blocked: plan.blocked_deletions.is_some() || !plan.prune_blocked.is_empty(),
        loose_invalid,
    };
    if counts.is_empty() && run_wide.any() {
        counts.insert(String::new(), Counts::default());
    }
    counts
        .into_iter()
        .map(|(project, c)| {
            let failed = run_wide.any() || c.failed + c.refused + c.invalid > 0;
            Status {
                project: (!project.is_empty()).then_some(project),
                state: if failed { "failure" } else { "success" },
                description: c.describe(&run_wide),
            }
        })
        .collect()
}

/// Problems of the run that no one project owns: each fails them all.
#[derive(Debug, Default)]
struct RunWide {
    prune_blocked: bool,
    /// Invalid manifests too broken to name their project.
    loose_invalid: usize,
}

impl RunWide {
    fn any(&self) -> bool {
        self.prune_blocked || self.loose_invalid > 0
    }
}

#[derive(Debug, Default)]
struct Counts {
    applied: usize,
    failed: usize,
    refused: usize,
    invalid: usize,
    unchanged: usize,
}

impl Counts {
    fn describe(&self, run: &RunWide) -> String {
        let parts: Vec<String> = [
            (self.applied, "applied"),
            (self.refused, "refused by the API"),
            (self.failed, "failed"),
            (self.invalid, "invalid"),
            (self.unchanged, "unchanged"),
        ]
        .iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, what)| format!("{n} {what}"))
        .collect();
        let mut text = if parts.is_empty() {
            "no jobs".to_string()
        } else {
            parts.join(", ")
        };
        if run.loose_invalid > 0 {
            text.push_str(&format!("; {} manifest(s) invalid", run.loose_invalid));
        }
        if run.prune_blocked {
            text.push_str("; pruning blocked");
        }
        text.chars().take(139).collect()
    }
}

/// The POST that sets `status` on `sha`.
pub fn outgoing(config: &Config, sha: &str, status: &Status) -> Outgoing {
    let mut url = config.api.clone();
    let base = url.path().trim_end_matches('/').to_string();
    url.set_path(&format!("{base}/repos/{}/statuses/{sha}", config.repo));
    let body = serde_json::json!({
        "state": status.state,
        "context": status.context(),
        "description": status.description,
    });
    let mut headers = HeaderMap::new();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(
        ACCEPT,
        HeaderValue::from_static("application/vnd.github+json"),
    );
    headers.insert(
        HeaderName::from_static("x-github-api-version"),
        HeaderValue::from_static("2022-11-28"),
    );
    if let Ok(mut auth) = HeaderValue::from_str(&format!("Bearer {}", config.token.expose())) {
        auth.set_sensitive(true);
        headers.insert(AUTHORIZATION, auth);
    }
    Outgoing {
        url,
        body: serde_json::to_vec(&body).expect("JSON values serialise"),
        headers,
        what: "github_status",
        // The caller's to set: GitHub's queue is after the receivers'.
        lane: 0,
    }
}

/// A commit id: 40 (SHA-1) or 64 (SHA-256) hex digits.
pub fn is_sha(s: &str) -> bool {
    matches!(s.len(), 40 | 64) && s.chars().all(|c| c.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |k| {
            vars.iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn the_repository_comes_from_the_flag_the_environment_or_a_github_url() {
        let token = [("GITHUB_TOKEN", "ghs_x")];
        let c = Config::resolve(Some("acme/jobs".into()), env(&token), None).expect("flag");
        assert_eq!(c.repo, "acme/jobs");
        assert_eq!(c.api.as_str(), "https://api.github.com/");
        let vars = [("GITHUB_TOKEN", "ghs_x"), ("GITHUB_REPOSITORY", "acme/env")];
        assert_eq!(
            Config::resolve(None, env(&vars), None).expect("env").repo,
            "acme/env"
        );
        for url in [
            "https://github.com/acme/git.git",
            "git@github.com:acme/git.git",
            "ssh://git@github.com/acme/git",
        ] {
            let c = Config::resolve(None, env(&token), Some(url)).expect(url);
            assert_eq!(c.repo, "acme/git", "{url}");
        }
        assert!(matches!(
            Config::resolve(None, env(&token), Some("https://gitlab.com/acme/x.git")),
            Err(ConfigError::NoRepo)
        ));
        assert!(matches!(
            Config::resolve(Some("acme/../x".into()), env(&token), None),
            Err(ConfigError::BadRepo(_))
        ));
        assert!(matches!(
            Config::resolve(Some("a/b".into()), env(&[]), None),
            Err(ConfigError::NoToken)
        ));
        let plain = [
            ("GITHUB_TOKEN", "t"),
            ("GITHUB_API_URL", "http://user:s3cret@github.example"),
        ];
        match Config::resolve(Some("a/b".into()), env(&plain), None) {
            Err(ConfigError::BadApi(shown)) => assert!(!shown.contains("s3cret"), "{shown}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn descriptions_stay_under_140_characters() {
        let c = Counts {
            applied: usize::MAX,
            failed: usize::MAX,
            refused: usize::MAX,
            invalid: usize::MAX,
            unchanged: usize::MAX,
        };
        let run = RunWide {
            prune_blocked: true,
            loose_invalid: usize::MAX,
        };
        assert!(c.describe(&run).chars().count() < 140);
        assert_eq!(Counts::default().describe(&RunWide::default()), "no jobs");
    }
}
