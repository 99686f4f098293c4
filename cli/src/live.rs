//! `explain --live`: a callout made for real, over plain HTTP/1.1 to the URL's origin. Envoy
//! would route it to the `clusters` entry; outside Envoy the origin is called directly. TLS is
//! not spoken here (no TLS crate in this workspace): an `https` callout is reported as not
//! performed, so answer it with `--answer`, or reach it through a plain-http port-forward.

use portcullis::context::MAX_CALLOUT_BODY;
use portcullis::vocab::callout::{Callout, CalloutResult};
use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

/// Why a live call produced no answer.
#[derive(Debug)]
pub enum LiveError {
    Https,
    Connect(String),
    Io(String),
    Malformed(&'static str),
    TooLarge,
}

impl std::fmt::Display for LiveError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LiveError::Https => f.write_str(
                "https is not supported by --live (plain http only); use --answer, or \
                 port-forward the service to a plain-http port and map it in clusters",
            ),
            LiveError::Connect(e) => write!(f, "cannot connect: {e}"),
            LiveError::Io(e) => write!(f, "{e}"),
            LiveError::Malformed(what) => write!(f, "malformed HTTP answer: {what}"),
            LiveError::TooLarge => write!(
                f,
                "the answer is larger than {MAX_CALLOUT_BODY} bytes (the filter treats it as failed)"
            ),
        }
    }
}

fn header<'a>(callout: &'a Callout, name: &str) -> &'a str {
    callout
        .headers
        .iter()
        .find(|(k, _)| k == name)
        .map_or("", |(_, v)| v.as_str())
}

/// Makes the call; the timeout is the callout's own (the `clusters` entry's).
pub fn call(callout: &Callout) -> Result<CalloutResult, LiveError> {
    if !header(callout, ":scheme").eq_ignore_ascii_case("http") {
        return Err(LiveError::Https);
    }
    let authority = header(callout, ":authority");
    let timeout = Duration::from_millis(callout.timeout_ms.max(1));
    let deadline = Instant::now() + timeout;
    let target = if authority.contains(':') && !authority.ends_with(']') {
        authority.to_string()
    } else {
        format!("{authority}:80")
    };
    let addrs: Vec<_> = target
        .to_socket_addrs()
        .map_err(|e| LiveError::Connect(format!("{target}: {e}")))?
        .collect();
    let mut stream = None;
    let mut last = String::from("no address");
    for addr in addrs.iter().take(4) {
        match TcpStream::connect_timeout(addr, timeout) {
            Ok(s) => {
                stream = Some(s);
                break;
            }
            Err(e) => last = format!("{addr}: {e}"),
        }
    }
    let mut stream = stream.ok_or(LiveError::Connect(last))?;
    let io = |e: std::io::Error| LiveError::Io(e.to_string());
    stream.set_write_timeout(Some(timeout)).map_err(io)?;

    let mut head = format!(
        "{} {} HTTP/1.1\r\nhost: {authority}\r\nconnection: close\r\n",
        header(callout, ":method"),
        header(callout, ":path"),
    );
    for (k, v) in callout.headers.iter().filter(|(k, _)| !k.starts_with(':')) {
        if k != "host" && k != "connection" && k != "content-length" {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
    }
    let body = callout.body.as_deref().unwrap_or_default();
    if callout.body.is_some() {
        head.push_str(&format!("content-length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).map_err(io)?;
    stream.write_all(body).map_err(io)?;

    let mut raw = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(LiveError::Io(format!(
                "no complete answer within the cluster's timeout ({} ms)",
                callout.timeout_ms
            )));
        }
        stream.set_read_timeout(Some(left)).map_err(io)?;
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => raw.extend_from_slice(buf.get(..n).unwrap_or_default()),
            Err(e) => return Err(io(e)),
        }
        if raw.len() > MAX_CALLOUT_BODY + 64 * 1024 {
            return Err(LiveError::TooLarge);
        }
    }
    parse_response(&raw)
}

/// An HTTP/1.1 answer read to the end of the connection.
fn parse_response(raw: &[u8]) -> Result<CalloutResult, LiveError> {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or(LiveError::Malformed("no end of headers"))?;
    let head = std::str::from_utf8(raw.get(..end).unwrap_or_default())
        .map_err(|_| LiveError::Malformed("headers are not UTF-8"))?;
    let rest = raw.get(end + 4..).unwrap_or_default();
    let mut lines = head.split("\r\n");
    let status: u32 = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or(LiveError::Malformed("no status line"))?;
    let mut headers = vec![(":status".to_string(), status.to_string())];
    for line in lines {
        let (k, v) = line
            .split_once(':')
            .ok_or(LiveError::Malformed("a header line without ':'"))?;
        headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
    }
    let value = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let body = if value("transfer-encoding").is_some_and(|t| t.eq_ignore_ascii_case("chunked")) {
        dechunk(rest)?
    } else if let Some(len) = value("content-length") {
        let len: usize = len
            .parse()
            .map_err(|_| LiveError::Malformed("bad content-length"))?;
        rest.get(..len)
            .ok_or(LiveError::Malformed(
                "the body is shorter than content-length",
            ))?
            .to_vec()
    } else {
        rest.to_vec()
    };
    if body.len() > MAX_CALLOUT_BODY {
        return Err(LiveError::TooLarge);
    }
    Ok(CalloutResult::Response {
        status,
        headers,
        body,
    })
}

fn dechunk(mut rest: &[u8]) -> Result<Vec<u8>, LiveError> {
    let mut body = Vec::new();
    // Every chunk consumes at least its size line, so this ends.
    loop {
        let eol = rest
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or(LiveError::Malformed("truncated chunk size"))?;
        let size_line = std::str::from_utf8(rest.get(..eol).unwrap_or_default())
            .map_err(|_| LiveError::Malformed("bad chunk size"))?;
        let size = usize::from_str_radix(size_line.split(';').next().unwrap_or("").trim(), 16)
            .map_err(|_| LiveError::Malformed("bad chunk size"))?;
        rest = rest.get(eol + 2..).unwrap_or_default();
        if size == 0 {
            return Ok(body);
        }
        body.extend_from_slice(
            rest.get(..size)
                .ok_or(LiveError::Malformed("truncated chunk"))?,
        );
        if body.len() > MAX_CALLOUT_BODY {
            return Err(LiveError::TooLarge);
        }
        rest = rest.get(size + 2..).unwrap_or_default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_length_and_chunked_answers() {
        let r =
            parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-A: b\r\n\r\n{}").unwrap();
        let (status, headers, body) = r.reached("the test").unwrap();
        assert_eq!((status, body.as_slice()), (200, &b"{}"[..]));
        assert!(headers.contains(&("x-a".into(), "b".into())));
        let r = parse_response(
            b"HTTP/1.1 401 Unauthorized\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
        )
        .unwrap();
        assert_eq!(r.reached("the test").unwrap().2, b"abcde");
        assert!(parse_response(b"HTTP/1.1 200 OK\r\n").is_err());
    }
}
