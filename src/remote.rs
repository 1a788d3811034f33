//! The Northflank API as the reconcile core sees it: the five calls it
//! makes and a request counter. `api::Client` is the real one; unit tests
//! of `reconcile` and `apply` pass a fake in memory (no HTTP).

use std::future::Future;

use serde_json::value::RawValue;
use serde_json::Value as Json;

use crate::api::{ApiError, Client};
use crate::manifest::JobKey;

/// What `reconcile`, `apply` and `live::read` call. Cheap to clone (the
/// applier hands a clone to each job's task).
pub trait Api: Clone + Send + Sync + 'static {
    /// Requests sent so far, retries included.
    fn requests_sent(&self) -> u64;

    /// `PUT .../jobs/cron`: creates or replaces the job.
    fn put_cron_job(
        &self,
        key: &JobKey,
        spec: &RawValue,
        shown: &RawValue,
    ) -> impl Future<Output = Result<(), ApiError>> + Send;

    /// `GET .../jobs/{id}`; `None` when the job does not exist.
    fn get_job(&self, key: &JobKey) -> impl Future<Output = Result<Option<Json>, ApiError>> + Send;

    /// `GET .../jobs/{id}/{what}`; `None` when it does not exist.
    fn get_job_part(
        &self,
        key: &JobKey,
        what: &str,
    ) -> impl Future<Output = Result<Option<Json>, ApiError>> + Send;

    /// `DELETE .../jobs/{id}`; a job already gone counts as deleted.
    fn delete_job(&self, key: &JobKey) -> impl Future<Output = Result<(), ApiError>> + Send;

    /// `GET .../jobs`, every page.
    fn list_jobs(
        &self,
        team: Option<&str>,
        project: &str,
    ) -> impl Future<Output = Result<Vec<Json>, ApiError>> + Send;
}

impl Api for Client {
    fn requests_sent(&self) -> u64 {
        Client::requests_sent(self)
    }

    async fn put_cron_job(
        &self,
        key: &JobKey,
        spec: &RawValue,
        shown: &RawValue,
    ) -> Result<(), ApiError> {
        Client::put_cron_job(self, key, spec, shown)
            .await
            .map(|_| ())
    }

    async fn get_job(&self, key: &JobKey) -> Result<Option<Json>, ApiError> {
        Client::get_job(self, key).await
    }

    async fn get_job_part(&self, key: &JobKey, what: &str) -> Result<Option<Json>, ApiError> {
        Client::get_job_part(self, key, what).await
    }

    async fn delete_job(&self, key: &JobKey) -> Result<(), ApiError> {
        Client::delete_job(self, key).await
    }

    async fn list_jobs(&self, team: Option<&str>, project: &str) -> Result<Vec<Json>, ApiError> {
        Client::list_jobs(self, team, project).await
    }
}
