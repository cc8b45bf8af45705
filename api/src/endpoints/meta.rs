use poem::web::Data;
use poem_openapi::{OpenApi, payload::Json};

use super::ApiTags;
use crate::{
    problem::{ApiError, HealthErrors},
    schemas::{Health, Message},
    state::AppState,
};

pub struct MetaApi;

#[OpenApi(tag = "ApiTags::Meta")]
impl MetaApi {
    /// Where to start
    ///
    /// Points to the interactive documentation and the spec.
    #[oai(path = "/", method = "get", operation_id = "root")]
    async fn root(&self) -> Json<Message> {
        Json(Message::start())
    }

    /// Check liveness
    ///
    /// 200 whenever the process answers, whatever the database's state: for a supervisor
    /// deciding whether to restart it.
    #[oai(path = "/health/live", method = "get", operation_id = "liveness")]
    async fn liveness(&self) -> Json<Message> {
        Json(Message::alive())
    }

    /// Check readiness
    ///
    /// 200 when the service and its database answer; 503 when the database does not: for a
    /// load balancer deciding whether to send it traffic. With read replicas configured, it
    /// says which of them page reads go to (a replica that stops or falls behind costs
    /// throughput, never readiness).
    #[oai(path = "/health", method = "get", operation_id = "health")]
    async fn health(&self, state: Data<&AppState>) -> Result<Json<Health>, ApiError<HealthErrors>> {
        service::database::check(&state.db).await?;
        Ok(Json(Health::with_replicas(state.db.replica_states())))
    }
}
