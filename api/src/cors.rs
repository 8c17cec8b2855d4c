//! CORS: the platforms' web front ends call the API from another origin.
//!
//! Every `OPTIONS` preflight is answered here, before routing, allowing any origin and the
//! headers the browser asks for; every answer carries `Access-Control-Allow-Origin: *`
//! (added in [`crate::routes`]).

use warp::{
    Filter,
    http::{HeaderValue, Method, StatusCode},
    reply::Response,
};

pub fn preflight() -> impl Filter<Extract = (Response,), Error = warp::Rejection> + Clone {
    // Any other method passes as "not found", so it never shadows a route's own answer.
    warp::method()
        .and_then(|method: Method| async move {
            if method == Method::OPTIONS {
                Ok(())
            } else {
                Err(warp::reject::not_found())
            }
        })
        .untuple_one()
        .and(warp::header::optional::<String>(
            "access-control-request-headers",
        ))
        .map(|requested: Option<String>| {
            let mut response = Response::new(Default::default());
            *response.status_mut() = StatusCode::NO_CONTENT;
            let headers = response.headers_mut();
            headers.insert(
                "access-control-allow-methods",
                HeaderValue::from_static("GET, POST, PUT, PATCH, DELETE, OPTIONS"),
            );
            let allowed = requested.and_then(|r| r.parse().ok()).unwrap_or_else(|| {
                HeaderValue::from_static(
                    "Authorization, Content-Type, Idempotency-Key, X-Request-Id",
                )
            });
            headers.insert("access-control-allow-headers", allowed);
            headers.insert("access-control-max-age", HeaderValue::from_static("86400"));
            response
        })
}
