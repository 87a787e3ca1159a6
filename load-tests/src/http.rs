//! A minimal HTTP/1.1 client for the few Pulsar admin calls the driver makes (health,
//! version, deleting the run's topics), so the driver needs no HTTP stack.
//!
//! Contract: plain `http://` only; one request per connection (`Connection: close`);
//! fixed-length and chunked bodies; every call bounded by a timeout.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("{0} is not an http:// URL")]
    BadUrl(String),
    #[error("{0}")]
    Io(String),
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    #[error("malformed HTTP response")]
    Malformed,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub body: String,
}

/// `method` `base` + `path`, e.g. `request("GET", "http://127.0.0.1:8080", "/admin/v2/brokers/health")`.
pub async fn request(
    method: &str,
    base: &str,
    path: &str,
    timeout: Duration,
) -> Result<Response, HttpError> {
    let url = url::Url::parse(base).map_err(|_| HttpError::BadUrl(base.to_owned()))?;
    if url.scheme() != "http" {
        return Err(HttpError::BadUrl(base.to_owned()));
    }
    let host = url
        .host_str()
        .ok_or_else(|| HttpError::BadUrl(base.to_owned()))?
        .to_owned();
    let port = url.port_or_known_default().unwrap_or(80);
    let prefix = url.path().trim_end_matches('/');
    let full_path = format!("{prefix}{path}");
    let exchange = async {
        let mut stream = TcpStream::connect((host.as_str(), port))
            .await
            .map_err(|e| HttpError::Io(e.to_string()))?;
        let head = format!(
            "{method} {full_path} HTTP/1.1\r\nHost: {host}:{port}\r\nAccept: */*\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        );
        stream
            .write_all(head.as_bytes())
            .await
            .map_err(|e| HttpError::Io(e.to_string()))?;
        let mut raw = Vec::new();
        stream
            .read_to_end(&mut raw)
            .await
            .map_err(|e| HttpError::Io(e.to_string()))?;
        parse_response(&raw)
    };
    tokio::time::timeout(timeout, exchange)
        .await
        .map_err(|_| HttpError::Timeout(timeout))?
}

/// Parses a complete response (status line, headers, body).
pub fn parse_response(raw: &[u8]) -> Result<Response, HttpError> {
    let text = String::from_utf8_lossy(raw);
    let (head, body) = text.split_once("\r\n\r\n").ok_or(HttpError::Malformed)?;
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|line| line.split_whitespace().nth(1))
        .and_then(|code| code.parse().ok())
        .ok_or(HttpError::Malformed)?;
    let chunked = lines.any(|line| {
        let line = line.to_ascii_lowercase();
        line.starts_with("transfer-encoding:") && line.contains("chunked")
    });
    let body = if chunked {
        dechunk(body)?
    } else {
        body.to_owned()
    };
    Ok(Response { status, body })
}

fn dechunk(mut body: &str) -> Result<String, HttpError> {
    let mut out = String::new();
    loop {
        let (size_line, rest) = body.split_once("\r\n").ok_or(HttpError::Malformed)?;
        let size_text = size_line.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_text, 16).map_err(|_| HttpError::Malformed)?;
        if size == 0 {
            return Ok(out);
        }
        let chunk = rest.get(..size).ok_or(HttpError::Malformed)?;
        out.push_str(chunk);
        body = rest.get(size..).ok_or(HttpError::Malformed)?;
        body = body.strip_prefix("\r\n").unwrap_or(body);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_length_body() {
        let raw = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
        assert_eq!(
            parse_response(raw).unwrap(),
            Response {
                status: 200,
                body: "ok".into()
            }
        );
    }

    #[test]
    fn chunked_body() {
        let raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\n4.0\r\n2\r\n.8\r\n0\r\n\r\n";
        assert_eq!(parse_response(raw).unwrap().body, "4.0.8");
    }

    #[test]
    fn garbage_is_malformed() {
        assert!(parse_response(b"nonsense").is_err());
    }
}
