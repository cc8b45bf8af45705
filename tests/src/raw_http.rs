//! Raw HTTP over TCP, to send what a client library would refuse to send and an attacker
//! sends anyway.

use serde_json::Value;

use crate::client::ApiClient;

impl ApiClient {
    /// `host:port` of the application, for raw TCP connections.
    pub fn socket_address(&self) -> String {
        self.address.trim_start_matches("http://").to_owned()
    }

    /// Sends `head` (a request line and headers, ending in an empty line) and `body` on a
    /// new connection and reads the response.
    pub async fn raw_request(&self, head: &str, body: &[u8]) -> RawResponse {
        use tokio::io::AsyncWriteExt;
        let mut stream = tokio::net::TcpStream::connect(self.socket_address())
            .await
            .expect("a TCP connection to the application");
        stream
            .write_all(head.as_bytes())
            .await
            .expect("the request head is sent");
        // A server may answer (and close) before taking the whole body: that is no error.
        let _ = stream.write_all(body).await;
        read_raw_response(&mut stream)
            .await
            .unwrap_or_else(|err| panic!("no readable response to {head:?}: {err}"))
    }
}

/// A response read off a raw TCP connection.
#[derive(Debug, Clone)]
pub struct RawResponse {
    pub status: u16,
    /// Header names lower-cased, in order.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl RawResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Checks that this is an RFC 9457 problem with `status`, and returns its body.
    pub fn check_problem(&self, status: u16, context: &str) -> Result<Value, String> {
        let text = String::from_utf8_lossy(&self.body);
        if self.status != status {
            return Err(format!(
                "{context}: expected {status}, got {} with body {text}",
                self.status
            ));
        }
        let content_type = self.header("content-type").unwrap_or_default();
        if !content_type.starts_with("application/problem+json") {
            return Err(format!(
                "{context}: expected application/problem+json, got {content_type:?}"
            ));
        }
        let body: Value = serde_json::from_slice(&self.body)
            .map_err(|err| format!("{context}: the problem is not JSON ({err}): {text}"))?;
        if body["status"].as_u64() != Some(u64::from(status)) {
            return Err(format!("{context}: the problem's status differs: {body}"));
        }
        if body["detail"].as_str().is_none_or(|d| d.trim().is_empty()) {
            return Err(format!("{context}: the problem has no detail: {body}"));
        }
        Ok(body)
    }
}

/// Reads one HTTP/1.1 response: the head through `httparse`, then a body framed by
/// `Content-Length`, by chunks, or by the end of the connection.
pub async fn read_raw_response(
    stream: &mut (impl tokio::io::AsyncRead + Unpin),
) -> std::io::Result<RawResponse> {
    use tokio::io::AsyncReadExt;
    let mut buffer = Vec::new();
    let (status, headers, head_length) = loop {
        let mut slots = [httparse::EMPTY_HEADER; 64];
        let mut head = httparse::Response::new(&mut slots);
        match head.parse(&buffer).map_err(invalid_data)? {
            httparse::Status::Complete(length) => {
                let headers: Vec<(String, String)> = head
                    .headers
                    .iter()
                    .map(|h| {
                        let value = String::from_utf8_lossy(h.value).trim().to_owned();
                        (h.name.to_ascii_lowercase(), value)
                    })
                    .collect();
                let status = head.code.expect("a complete head has a status");
                break (status, headers, length);
            }
            httparse::Status::Partial => read_more(stream, &mut buffer, "a full head").await?,
        }
    };
    let mut rest = buffer.split_off(head_length);
    let find = |name: &str| headers.iter().find(|(n, _)| n == name).map(|(_, v)| v);
    let body = if let Some(length) = find("content-length") {
        let length: usize = length.parse().map_err(invalid_data)?;
        while rest.len() < length {
            read_more(stream, &mut rest, "the body").await?;
        }
        rest.truncate(length);
        rest
    } else if find("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        let mut body = Vec::new();
        loop {
            let (start, size) = match httparse::parse_chunk_size(&rest).map_err(invalid_data)? {
                httparse::Status::Complete(sized) => sized,
                httparse::Status::Partial => {
                    read_more(stream, &mut rest, "a chunk size").await?;
                    continue;
                }
            };
            if size == 0 {
                break;
            }
            let size = usize::try_from(size).map_err(invalid_data)?;
            // The chunk's data and the line end after it.
            while rest.len() < start + size + 2 {
                read_more(stream, &mut rest, "a chunk").await?;
            }
            body.extend_from_slice(&rest[start..start + size]);
            rest.drain(..start + size + 2);
        }
        body
    } else if status == 204 || status == 304 {
        Vec::new()
    } else {
        stream.read_to_end(&mut rest).await?;
        rest
    };
    Ok(RawResponse {
        status,
        headers,
        body,
    })
}

/// Appends what the stream has next to `buffer`; an error if it ends before `awaited`.
async fn read_more(
    stream: &mut (impl tokio::io::AsyncRead + Unpin),
    buffer: &mut Vec<u8>,
    awaited: &str,
) -> std::io::Result<()> {
    use tokio::io::AsyncReadExt;
    buffer.reserve(4096);
    if stream.read_buf(buffer).await? == 0 {
        let start = &buffer[..buffer.len().min(500)];
        return Err(invalid_data(format!(
            "the connection closed before {awaited}, after {} bytes: {:?}",
            buffer.len(),
            String::from_utf8_lossy(start)
        )));
    }
    Ok(())
}

fn invalid_data(error: impl std::fmt::Display) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, error.to_string())
}
