//! `POST /accounting/credentials/ {"cluster": "<name>"}`: an admin issues the credential of a
//! Slurm cluster's epilogue (answered once, never stored in clear); `DELETE` with the same
//! body revokes every credential of the cluster.

use command::values::ClusterName;
use warp::{Reply, http::Method, reply::Response};

use super::{Call, Caller, errors::AccountingError, fields, success};
use crate::{App, context::RequestContext};

pub async fn issue(
    ctx: &RequestContext,
    app: &App,
    call: &Call,
) -> Result<Response, AccountingError> {
    if call.method != Method::POST && call.method != Method::DELETE {
        return Err(AccountingError::method_not_allowed(
            &call.method,
            "POST, DELETE, OPTIONS",
        ));
    }
    let Caller::Admin(admin) = call.caller(app).await? else {
        return Err(AccountingError::forbidden());
    };
    let body = fields::body(
        call.content_type.as_deref(),
        call.body.as_deref().unwrap_or_default(),
    )?;
    let cluster = body
        .get("cluster")
        .and_then(|c| c.as_str())
        .map(|c| ClusterName::parse(c.trim()))
        .ok_or_else(|| AccountingError::bad_request("cluster is required."))?
        .map_err(|e| AccountingError::bad_request(format!("cluster {}.", e.problem)))?;
    if call.method == Method::DELETE {
        let revoked =
            projection::epilogue_credentials::revoke(&app.db.pool, cluster.as_str()).await?;
        tracing::info!(request_id = %ctx.request_id, cluster = %cluster, revoked, "epilogue credentials revoked");
        return Ok(
            success(serde_json::json!({ "cluster": cluster.as_str(), "revoked": revoked }))
                .into_response(),
        );
    }
    let token =
        projection::epilogue_credentials::issue(&app.db.pool, cluster.as_str(), &admin).await?;
    tracing::info!(request_id = %ctx.request_id, cluster = %cluster, by = %admin, "epilogue credential issued");
    Ok(success(serde_json::json!({ "cluster": cluster.as_str(), "token": token })).into_response())
}
