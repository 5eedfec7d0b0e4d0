//! A minimal HTTP/1.1 server for the viewer: one thread per connection, one request per
//! connection (`Connection: close`), bodies by Content-Length. Enough for a page served to one
//! user over localhost or an SSH tunnel; no TLS, no keep-alive.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;

/// Largest request body accepted (polygons and paths are small).
const MAX_BODY: usize = 16 << 20;

/// A parsed request.
#[derive(Debug)]
pub struct Request {
    /// GET, POST, ...
    pub method: String,
    /// Path without the query, percent-decoded.
    pub path: String,
    /// Query parameters, percent-decoded.
    pub query: Vec<(String, String)>,
    /// Body bytes.
    pub body: Vec<u8>,
}

impl Request {
    /// The value of query parameter `name`.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.query.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

/// A response: status, content type, body.
pub struct Response {
    /// HTTP status code.
    pub status: u16,
    /// Content-Type.
    pub content_type: &'static str,
    /// Body bytes.
    pub body: Vec<u8>,
}

impl Response {
    /// 200 with a body.
    pub fn ok(content_type: &'static str, body: impl Into<Vec<u8>>) -> Self {
        Response { status: 200, content_type, body: body.into() }
    }

    /// 200 with JSON.
    pub fn json(body: String) -> Self {
        Response::ok("application/json", body)
    }

    /// An error status with a plain-text message.
    pub fn error(status: u16, message: impl Into<String>) -> Self {
        Response { status, content_type: "text/plain; charset=utf-8", body: message.into().into_bytes() }
    }
}

/// Serves `listener` forever, answering each request with `handle`.
pub fn serve(listener: TcpListener, handle: Arc<dyn Fn(&Request) -> Response + Send + Sync>) {
    for stream in listener.incoming().flatten() {
        let handle = Arc::clone(&handle);
        std::thread::spawn(move || {
            let _ = answer(stream, &*handle);
        });
    }
}

fn answer(mut stream: TcpStream, handle: &dyn Fn(&Request) -> Response) -> std::io::Result<()> {
    let response = match read_request(&mut stream) {
        Ok(request) => handle(&request),
        Err(message) => Response::error(400, message),
    };
    let reason = match response.status {
        200 => "OK",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        _ => "Error",
    };
    let head = format!(
        "HTTP/1.1 {} {reason}\r\nContent-Type: {}\r\nContent-Length: {}\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n",
        response.status,
        response.content_type,
        response.body.len()
    );
    stream.write_all(head.as_bytes())?;
    stream.write_all(&response.body)?;
    stream.flush()
}

fn read_request(stream: &mut TcpStream) -> Result<Request, String> {
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).map_err(|e| e.to_string())?;
    let mut parts = line.split_whitespace();
    let (method, target) = match (parts.next(), parts.next()) {
        (Some(m), Some(t)) => (m.to_string(), t.to_string()),
        _ => return Err(format!("not an HTTP request line: {line:?}")),
    };
    let mut length = 0usize;
    loop {
        let mut header = String::new();
        reader.read_line(&mut header).map_err(|e| e.to_string())?;
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse().map_err(|_| "bad Content-Length".to_string())?;
        }
    }
    if length > MAX_BODY {
        return Err(format!("request body of {length} bytes is too large"));
    }
    let mut body = vec![0u8; length];
    reader.read_exact(&mut body).map_err(|e| e.to_string())?;
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    let query = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(k), decode(v))
        })
        .collect();
    Ok(Request { method, path: decode(path), query, body })
}

/// Percent-decoding (and `+` as space in queries).
fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                match std::str::from_utf8(&bytes[i + 1..i + 3])
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                {
                    Some(b) => {
                        out.push(b);
                        i += 3;
                        continue;
                    }
                    None => out.push(b'%'),
                }
            }
            b'+' => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_decoding() {
        assert_eq!(decode("a%20b+c%2F..%2f"), "a b c/../");
        assert_eq!(decode("100%"), "100%");
        assert_eq!(decode("%zz"), "%zz");
    }

    #[test]
    fn a_request_round_trip_over_a_socket() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let handle: Arc<dyn Fn(&Request) -> Response + Send + Sync> = Arc::new(|r: &Request| {
            Response::ok(
                "text/plain",
                format!("{} {} {:?} {}", r.method, r.path, r.param("q"), String::from_utf8_lossy(&r.body)),
            )
        });
        std::thread::spawn(move || serve(listener, handle));
        let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
        stream.write_all(b"POST /api/x%20y?q=1%2C2 HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello").unwrap();
        let mut reply = String::new();
        stream.read_to_string(&mut reply).unwrap();
        assert!(reply.starts_with("HTTP/1.1 200 OK\r\n"), "{reply}");
        assert!(reply.ends_with("POST /api/x y Some(\"1,2\") hello"), "{reply}");
    }
}
