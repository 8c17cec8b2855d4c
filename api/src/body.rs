//! Reading request bodies: at most 1 MiB, whatever the Content-Type says.
//!
//! The course platform's own samples send JSON with `curl -d`, that is as
//! `application/x-www-form-urlencoded`, so doors parse the bytes, not the header.

use bytes::{Buf, BytesMut};
use futures::{Stream, StreamExt};
use warp::Filter;

/// No door takes a JSON body larger than this; file uploads will get their own limit.
pub const LIMIT: usize = 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error("request body is larger than {LIMIT} bytes")]
    TooLarge,
    #[error("request body could not be read: {0}")]
    Read(String),
}

/// The body's bytes, or why there are none. Never rejects, so each door answers in its
/// own envelope.
pub fn bytes()
-> impl Filter<Extract = (Result<bytes::Bytes, BodyError>,), Error = warp::Rejection> + Clone {
    warp::body::stream().then(collect)
}

async fn collect<S, B>(stream: S) -> Result<bytes::Bytes, BodyError>
where
    S: Stream<Item = Result<B, warp::Error>>,
    B: Buf,
{
    let mut body = BytesMut::new();
    let mut stream = std::pin::pin!(stream);
    while let Some(chunk) = stream.next().await {
        let mut chunk = chunk.map_err(|e| BodyError::Read(e.to_string()))?;
        if body.len() + chunk.remaining() > LIMIT {
            return Err(BodyError::TooLarge);
        }
        while chunk.has_remaining() {
            let part = chunk.chunk();
            let n = part.len();
            body.extend_from_slice(part);
            chunk.advance(n);
        }
    }
    Ok(body.freeze())
}

/// Deserializes a field that may be `null` as its default, as the platforms' Go and
/// JavaScript servers did.
pub fn null_as_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Default + serde::Deserialize<'de>,
{
    Ok(<Option<T> as serde::Deserialize>::deserialize(deserializer)?.unwrap_or_default())
}
