//! Image references against what `GET .../deployment` returns for them.
//!
//! The PUT body takes an external image with its registry host
//! (`ghcr.io/acme/app:1`); the read gives the path *without* the host
//! (`acme/app:1`) and a `registryProvider` beside it. Two references are
//! the same image when their paths agree and the manifest's host is one
//! the provider serves. Only some providers have one fixed host; for the
//! others (`ecr`, `acr`, `gar`, `custom`, ...) the host cannot be read
//! back at all.

/// The one host of providers that have one; `Some("")` for Docker Hub
/// (written without a host). `None`: the host varies per account.
pub fn fixed_host(provider: &str) -> Option<&'static str> {
    match provider {
        "github" => Some("ghcr.io"),
        "gitlab" => Some("registry.gitlab.com"),
        "dockerhub" => Some(""),
        _ => None,
    }
}

const DOCKER_HUB_HOSTS: &[&str] = &["docker.io", "index.docker.io", "registry-1.docker.io"];

/// `(host, rest)` as Docker splits a reference: the first component is a
/// host when it has a `.` or `:` or is `localhost`. A leading `http(s)://`
/// and a `/v1` after the host (both allowed by the API's pattern) go.
pub fn split_host(image: &str) -> (Option<&str>, &str) {
    let image = image
        .strip_prefix("https://")
        .or_else(|| image.strip_prefix("http://"))
        .unwrap_or(image)
        .trim_start_matches('/');
    match image.split_once('/') {
        Some((first, rest))
            if first.contains('.') || first.contains(':') || first == "localhost" =>
        {
            (Some(first), rest.strip_prefix("v1/").unwrap_or(rest))
        }
        _ => (None, image),
    }
}

/// Docker Hub's official images live under `library/`: `x` is `library/x`.
fn hub_path(path: &str) -> &str {
    path.strip_prefix("library/").unwrap_or(path)
}

/// Whether `host` (from a manifest) is one `provider` serves.
fn host_fits(host: Option<&str>, provider: &str) -> bool {
    match (provider, host) {
        ("dockerhub", None) => true,
        ("dockerhub", Some(h)) => DOCKER_HUB_HOSTS.contains(&h),
        (_, None) => false,
        ("github", Some(h)) => h == "ghcr.io",
        ("gitlab", Some(h)) => h == "registry.gitlab.com",
        ("ecr", Some(h)) => h.contains(".dkr.ecr.") && h.ends_with(".amazonaws.com"),
        ("acr", Some(h)) => h.ends_with(".azurecr.io"),
        ("gar", Some(h)) => h.ends_with("-docker.pkg.dev") || h.ends_with("gcr.io"),
        ("dhi", Some(h)) => h == "dhi.io",
        // `custom` and `legacy`: any host the other providers do not own.
        (_, Some(h)) => !["github", "gitlab", "ecr", "acr", "gar", "dockerhub"]
            .iter()
            .any(|p| host_fits(Some(h), p)),
    }
}

/// Whether the manifest's `image` is the live `path` at `provider`.
pub fn same_image(image: &str, path: &str, provider: &str) -> bool {
    let (host, rest) = split_host(image);
    let paths_agree = match provider {
        "dockerhub" => hub_path(rest) == hub_path(path),
        _ => rest == path,
    };
    paths_agree && host_fits(host, provider)
}

/// The live image as a manifest would write it, when the provider's host
/// is fixed; `None` when it cannot be known.
pub fn restore(path: &str, provider: &str) -> Option<String> {
    match fixed_host(provider)? {
        "" => Some(hub_path(path).to_string()),
        host => Some(format!("{host}/{path}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_manifests_host_must_be_the_providers() {
        let cases = [
            ("ghcr.io/acme/report:1.4", "acme/report:1.4", "github", true),
            (
                "ghcr.io/acme/report:1.4",
                "acme/report:1.5",
                "github",
                false,
            ),
            (
                "ghcr.io/acme/report:1.4",
                "acme/report:1.4",
                "gitlab",
                false,
            ),
            ("registry.gitlab.com/a/b:1", "a/b:1", "gitlab", true),
            ("docker.io/library/nginx:1", "nginx:1", "dockerhub", true),
            ("nginx:1", "library/nginx:1", "dockerhub", true),
            ("nginx:1", "nginx:1", "dockerhub", true),
            ("acme/app:1", "acme/app:1", "dockerhub", true),
            ("acme/app:1", "acme/app:1", "github", false),
            (
                "123456789012.dkr.ecr.eu-west-1.amazonaws.com/app:7",
                "app:7",
                "ecr",
                true,
            ),
            (
                "registry.acme.dev:5000/ops/job:2",
                "ops/job:2",
                "custom",
                true,
            ),
            (
                "registry.acme.dev:5000/ops/job:2",
                "ops/job:2",
                "ecr",
                false,
            ),
            ("ghcr.io/ops/job:2", "ops/job:2", "custom", false),
            ("https://r.acme.dev/v1/a:1", "a:1", "custom", true),
        ];
        for (image, path, provider, same) in cases {
            assert_eq!(
                same_image(image, path, provider),
                same,
                "{image} vs {path} at {provider}"
            );
        }
    }

    #[test]
    fn fixed_hosts_are_restored() {
        assert_eq!(
            restore("acme/r:1", "github").as_deref(),
            Some("ghcr.io/acme/r:1")
        );
        assert_eq!(
            restore("a/b:1", "gitlab").as_deref(),
            Some("registry.gitlab.com/a/b:1")
        );
        assert_eq!(
            restore("library/nginx:1", "dockerhub").as_deref(),
            Some("nginx:1")
        );
        assert_eq!(restore("app:7", "ecr"), None);
    }
}
