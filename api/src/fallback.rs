//! Answers for requests no route took: unknown paths and wrong methods, in the envelope of
//! the door whose paths they resemble.

use std::convert::Infallible;

use serde_json::json;
use warp::{Rejection, Reply, http::StatusCode, reply::Response};

pub async fn recover(rejection: Rejection) -> Result<Response, Infallible> {
    let (status, text) = if rejection.is_not_found() {
        (StatusCode::NOT_FOUND, "404 page not found".to_string())
    } else if rejection.find::<warp::reject::MethodNotAllowed>().is_some() {
        (
            StatusCode::METHOD_NOT_ALLOWED,
            "405 method not allowed".to_string(),
        )
    } else {
        (StatusCode::BAD_REQUEST, "400 bad request".to_string())
    };
    Ok(warp::reply::with_status(
        warp::reply::json(&json!({ "error": true, "message": text })),
        status,
    )
    .into_response())
}
