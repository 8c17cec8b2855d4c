//! One HTTP/1.1 keep-alive connection per load client, straight on hyper.
//!
//! The load generator shares the machine with what it measures, so it should cost as
//! little as `pgbench` does beside PostgreSQL: no pool, no URL parsing per request, one
//! connection per client (64 clients are 64 connections).

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Request, client::conn::http1::SendRequest};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// How long one request may take before it counts as unanswered.
const TIMEOUT: Duration = Duration::from_secs(30);

pub type Body = Full<Bytes>;

pub struct Connection {
    /// `host:port` to connect to, also sent as `Host`.
    authority: String,
    sender: Option<SendRequest<Body>>,
}

impl Connection {
    /// A connection to `base` (`http://host:port`), opened on the first request.
    pub fn new(base: &str) -> anyhow::Result<Self> {
        let uri: hyper::Uri = base.parse()?;
        if uri.scheme_str() != Some("http") {
            anyhow::bail!("only http:// bases are supported: {base}");
        }
        let Some(authority) = uri.authority() else {
            anyhow::bail!("no host in {base}");
        };
        Ok(Self {
            authority: authority.to_string(),
            sender: None,
        })
    }

    /// A request to `path` (starting with `/`) with the `Host` header set.
    pub fn request(&self, method: hyper::Method, path: &str) -> hyper::http::request::Builder {
        Request::builder()
            .method(method)
            .uri(path)
            .header(hyper::header::HOST, &self.authority)
    }

    /// Sends `request` and reads its whole answer: the status, or why there was none. A
    /// failed connection is dropped and the next request opens a new one.
    pub async fn send(&mut self, request: Request<Body>) -> Result<u16, String> {
        match tokio::time::timeout(TIMEOUT, self.exchange(request)).await {
            Ok(Ok(status)) => Ok(status),
            Ok(Err(reason)) => {
                self.sender = None;
                Err(reason)
            }
            Err(_) => {
                self.sender = None;
                Err("error: timeout".into())
            }
        }
    }

    async fn exchange(&mut self, request: Request<Body>) -> Result<u16, String> {
        let sender = match &mut self.sender {
            Some(sender) => sender,
            None => self.sender.insert(self.connect().await?),
        };
        sender
            .ready()
            .await
            .map_err(|_| "error: connection".to_string())?;
        let response = sender
            .send_request(request)
            .await
            .map_err(|_| "error: request".to_string())?;
        let status = response.status().as_u16();
        response
            .into_body()
            .collect()
            .await
            .map_err(|_| "error: body".to_string())?;
        Ok(status)
    }

    async fn connect(&self) -> Result<SendRequest<Body>, String> {
        let stream = TcpStream::connect(&self.authority)
            .await
            .map_err(|_| "error: connect".to_string())?;
        let _ = stream.set_nodelay(true);
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|_| "error: connect".to_string())?;
        tokio::spawn(connection);
        Ok(sender)
    }
}
