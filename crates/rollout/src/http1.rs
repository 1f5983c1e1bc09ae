//! Just enough HTTP/1.1 for the server: one request per connection, `Content-Length` bodies,
//! `Connection: close` replies.

use std::io::{self, Read, Write};

/// Longest request head (request line + headers) accepted.
const MAX_HEAD_BYTES: usize = 16 * 1024;

/// A parsed request.
#[derive(Debug)]
pub(crate) struct Request {
    pub method: String,
    /// Path without the query string.
    pub path: String,
    pub body: Vec<u8>,
}

/// Why a request could not be read; each maps to a status.
#[derive(Debug)]
pub(crate) enum ReadError {
    /// The connection failed or timed out: nothing to answer.
    Io,
    /// The peer closed before sending a request: nothing to answer.
    Closed,
    /// Malformed request (400).
    Bad(String),
    /// Head over [`MAX_HEAD_BYTES`] (431).
    HeadTooLarge,
    /// A body without `Content-Length` (411), e.g. chunked.
    LengthRequired,
    /// Body over the limit (413).
    TooLarge { limit: usize, declared: usize },
}

impl ReadError {
    /// The status and message to answer with, if any.
    pub(crate) fn status(&self) -> Option<(u16, String)> {
        match self {
            Self::Io | Self::Closed => None,
            Self::Bad(m) => Some((400, m.clone())),
            Self::HeadTooLarge => Some((
                431,
                format!("request head is larger than {MAX_HEAD_BYTES} bytes"),
            )),
            Self::LengthRequired => Some((
                411,
                "a request body needs a Content-Length header (chunked bodies are not supported)"
                    .into(),
            )),
            Self::TooLarge { limit, declared } => Some((
                413,
                format!(
                    "request body of {declared} bytes is larger than the limit of {limit} bytes"
                ),
            )),
        }
    }
}

/// Read one request from `stream`, rejecting bodies over `max_body` bytes before reading them.
pub(crate) fn read_request<S: Read + Write>(
    stream: &mut S,
    max_body: usize,
) -> Result<Request, ReadError> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = find(&buf, b"\r\n\r\n") {
            break i;
        }
        if buf.len() > MAX_HEAD_BYTES {
            return Err(ReadError::HeadTooLarge);
        }
        let got = stream.read(&mut chunk).map_err(|_| ReadError::Io)?;
        if got == 0 {
            return Err(if buf.is_empty() {
                ReadError::Closed
            } else {
                ReadError::Bad("connection closed inside the request head".into())
            });
        }
        buf.extend_from_slice(&chunk[..got]);
    };
    if head_end > MAX_HEAD_BYTES {
        return Err(ReadError::HeadTooLarge);
    }
    let head = std::str::from_utf8(&buf[..head_end])
        .map_err(|_| ReadError::Bad("request head is not UTF-8".into()))?;
    let mut lines = head.split("\r\n");
    let request_line = lines.next().unwrap_or_default();
    let mut parts = request_line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(ReadError::Bad(format!(
            "malformed request line {request_line:?}"
        )));
    };
    if !version.starts_with("HTTP/1.") {
        return Err(ReadError::Bad(format!("unsupported protocol {version:?}")));
    }
    let mut length = None;
    let mut chunked = false;
    let mut expect_continue = false;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            return Err(ReadError::Bad(format!("malformed header line {line:?}")));
        };
        let value = value.trim();
        match name.trim().to_ascii_lowercase().as_str() {
            "content-length" => {
                let n: usize = value
                    .parse()
                    .map_err(|_| ReadError::Bad(format!("bad Content-Length {value:?}")))?;
                if length.is_some_and(|l| l != n) {
                    return Err(ReadError::Bad("conflicting Content-Length headers".into()));
                }
                length = Some(n);
            }
            "transfer-encoding" => chunked = true,
            "expect" => expect_continue = value.eq_ignore_ascii_case("100-continue"),
            _ => {}
        }
    }
    if chunked {
        return Err(ReadError::LengthRequired);
    }
    let length = match (length, method) {
        (Some(n), _) => n,
        (None, "POST" | "PUT" | "PATCH") => return Err(ReadError::LengthRequired),
        (None, _) => 0,
    };
    if length > max_body {
        return Err(ReadError::TooLarge {
            limit: max_body,
            declared: length,
        });
    }
    if expect_continue && length > 0 {
        stream
            .write_all(b"HTTP/1.1 100 Continue\r\n\r\n")
            .map_err(|_| ReadError::Io)?;
    }
    let mut body = buf[head_end + 4..].to_vec();
    if body.len() > length {
        return Err(ReadError::Bad("more body bytes than Content-Length".into()));
    }
    let start = body.len();
    body.resize(length, 0);
    stream
        .read_exact(&mut body[start..])
        .map_err(|e| match e.kind() {
            io::ErrorKind::UnexpectedEof => {
                ReadError::Bad("connection closed before the whole body arrived".into())
            }
            _ => ReadError::Io,
        })?;
    let path = target.split('?').next().unwrap_or_default().to_string();
    Ok(Request {
        method: method.to_string(),
        path,
        body,
    })
}

/// Write a complete JSON response and close the exchange.
pub(crate) fn write_json<W: Write>(
    stream: &mut W,
    status: u16,
    body: &[u8],
    extra_headers: &[(&str, &str)],
) -> io::Result<()> {
    let mut head = format!(
        "HTTP/1.1 {status} {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n",
        reason(status),
        body.len()
    );
    for (k, v) in extra_headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;
    stream.write_all(body)?;
    stream.flush()
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        411 => "Length Required",
        413 => "Payload Too Large",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Unknown",
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;

    use super::*;

    /// A stream reading from `input` and recording what is written.
    struct Duplex {
        input: Cursor<Vec<u8>>,
        output: Vec<u8>,
    }

    impl Read for Duplex {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            self.input.read(buf)
        }
    }

    impl Write for Duplex {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.output.extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn read(raw: &str, max: usize) -> Result<Request, ReadError> {
        let mut s = Duplex {
            input: Cursor::new(raw.as_bytes().to_vec()),
            output: Vec::new(),
        };
        read_request(&mut s, max)
    }

    #[test]
    fn parses_a_post_with_body_and_query() {
        let r = read(
            "POST /v1/completions?x=1 HTTP/1.1\r\nHost: a\r\ncontent-length: 4\r\n\r\n{}{}",
            100,
        )
        .unwrap();
        assert_eq!(
            (r.method.as_str(), r.path.as_str()),
            ("POST", "/v1/completions")
        );
        assert_eq!(r.body, b"{}{}");
    }

    #[test]
    fn maps_bad_requests_to_statuses() {
        let status = |raw: &str, max| read(raw, max).unwrap_err().status().map(|s| s.0);
        assert_eq!(
            status("POST / HTTP/1.1\r\nContent-Length: 50\r\n\r\n", 10),
            Some(413)
        );
        assert_eq!(
            status("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", 10),
            Some(411)
        );
        assert_eq!(status("POST / HTTP/1.1\r\n\r\n", 10), Some(411));
        assert_eq!(status("GARBAGE\r\n\r\n", 10), Some(400));
        assert_eq!(
            status("GET / HTTP/1.1\r\nContent-Length: x\r\n\r\n", 10),
            Some(400)
        );
        assert_eq!(
            status("POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nab", 10),
            Some(400)
        );
        let long = format!("GET / HTTP/1.1\r\nX: {}\r\n\r\n", "a".repeat(20_000));
        assert_eq!(status(&long, 10), Some(431));
        assert_eq!(status("", 10), None);
    }

    #[test]
    fn writes_a_complete_response() {
        let mut out = Vec::new();
        write_json(&mut out, 404, b"{}", &[("Retry-After", "1")]).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with("HTTP/1.1 404 Not Found\r\n"));
        assert!(text.contains("Content-Length: 2\r\n") && text.contains("Retry-After: 1\r\n"));
        assert!(text.ends_with("\r\n\r\n{}"));
    }
}
