//! The jobs the benchmarks plan and apply: numbered manifests, ten to a
//! file. Shared by the bench targets through `#[path]` (each is a crate of
//! its own), so that they measure the same inputs.

use std::path::Path;

/// Job `n`: a full spec of the size real manifests have, run at 03:00.
pub fn manifest(n: usize) -> String {
    format!(
        "kind: CronJob\nproject: bench\nspec:\n  name: Job {n:05}\n  description: Benchmark job {n}.\n  billing:\n    deploymentPlan: nf-compute-20\n  backoffLimit: 2\n  schedule: \"0 3 * * *\"\n  concurrencyPolicy: forbid\n  deployment:\n    external:\n      imagePath: ghcr.io/acme/job:1.0\n  runtimeEnvironment:\n    DATABASE_URL: postgres://db/{n}\n    MODE: batch\n"
    )
}

/// Jobs 0 to `jobs - 1` in `dir/jobs.d`, ten documents to a file.
pub fn generate(dir: &Path, jobs: usize) {
    const PER_FILE: usize = 10;
    std::fs::create_dir_all(dir.join("jobs.d")).expect("mkdir");
    for f in 0..jobs.div_ceil(PER_FILE) {
        let docs: Vec<String> = (f * PER_FILE..((f + 1) * PER_FILE).min(jobs))
            .map(manifest)
            .collect();
        std::fs::write(
            dir.join(format!("jobs.d/jobs-{f:04}.yaml")),
            docs.join("---\n"),
        )
        .expect("write");
    }
}
