//! A JSON-RPC client of one unix socket (invoiced's or lightningd's), with a pool of open
//! connections so that concurrent calls neither wait for each other nor reconnect each time.
//!
//! A call either gets the server's answer (`Ok` or [`CallError::Rpc`] with its error object,
//! passed on unchanged) or fails to reach it ([`CallError::Unreachable`]). A pooled connection
//! that the server closed fails when the request is written (a unix socket reports a gone peer
//! at once), before anything was sent: that call is retried once on a fresh connection. A
//! connection that fails after its request was written is dropped and the call reported
//! unreachable, since the server may or may not have acted on it.
//!
//! The framing is Core Lightning's: a request is one JSON object, an answer one JSON object
//! followed by a blank line (`"\n\n"`, which no JSON text holds outside a string, where a
//! newline is escaped). Each request is written straight from its parts and each answer parsed
//! once, from the connection's own buffer.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::UnixStream;

/// Most idle connections kept.
const MAX_IDLE: usize = 64;

/// How a call failed.
#[derive(Clone, Debug, PartialEq)]
pub enum CallError {
    /// The server answered with this error object (`code`, `message`, maybe `data`).
    Rpc(Value),
    /// The server could not be reached, or did not answer.
    Unreachable(String),
}

impl CallError {
    /// The server's error code, if it answered.
    pub fn code(&self) -> Option<i64> {
        match self {
            CallError::Rpc(e) => e["code"].as_i64(),
            CallError::Unreachable(_) => None,
        }
    }

    /// The error as a JSON-RPC error object: the server's own, or -1 naming the socket.
    pub fn to_error_object(&self, what: &str, path: &Path) -> Value {
        match self {
            CallError::Rpc(e) => e.clone(),
            CallError::Unreachable(why) => {
                json!({ "code": -1, "message": format!("{what} is unreachable at {}: {why}", path.display()) })
            }
        }
    }
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallError::Rpc(e) => write!(f, "{e}"),
            CallError::Unreachable(why) => write!(f, "unreachable: {why}"),
        }
    }
}

/// A request as written.
#[derive(Serialize)]
struct Request<'a, I: Serialize> {
    jsonrpc: &'static str,
    id: I,
    method: &'a str,
    params: &'a Value,
}

/// An answer as read: its result or its error.
#[derive(Deserialize)]
struct Answer {
    #[serde(default)]
    result: Option<Value>,
    #[serde(default)]
    error: Option<Value>,
}

/// One open connection, with what it has read past the last answer.
struct Conn {
    stream: UnixStream,
    buf: Vec<u8>,
}

impl Conn {
    async fn open(path: &Path) -> Result<Conn, CallError> {
        UnixStream::connect(path)
            .await
            .map(|stream| Conn {
                stream,
                buf: Vec::with_capacity(4096),
            })
            .map_err(|e| CallError::Unreachable(format!("{}: {e}", path.display())))
    }

    /// Sends one request and reads its answer.
    async fn call<I: Serialize>(
        &mut self,
        id: I,
        method: &str,
        params: &Value,
    ) -> Result<Result<Value, Value>, Attempt> {
        let request = Request {
            jsonrpc: "2.0",
            id,
            method,
            params,
        };
        let bytes = serde_json::to_vec(&request)
            .map_err(|e| Attempt::Failed(CallError::Unreachable(e.to_string())))?;
        if self.stream.write_all(&bytes).await.is_err() {
            return Err(Attempt::NotSent);
        }
        let unreachable = |why: String| Attempt::Failed(CallError::Unreachable(why));
        let mut searched = 0;
        let end = loop {
            if let Some(i) = self.buf[searched..].windows(2).position(|w| w == b"\n\n") {
                break searched + i;
            }
            searched = self.buf.len().saturating_sub(1);
            let mut chunk = [0u8; 8192];
            match self.stream.read(&mut chunk).await {
                Ok(0) => return Err(unreachable("closed before answering".into())),
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) => return Err(unreachable(e.to_string())),
            }
        };
        let answer: Result<Answer, _> = serde_json::from_slice(&self.buf[..end]);
        self.buf.drain(..end + 2);
        match answer {
            Ok(Answer { error: Some(e), .. }) => Ok(Err(e)),
            Ok(Answer { result, .. }) => Ok(Ok(result.unwrap_or(Value::Null))),
            Err(e) => Err(unreachable(format!("an answer that is not JSON-RPC: {e}"))),
        }
    }
}

/// Pooled connections to one socket.
pub struct RpcPool {
    path: PathBuf,
    idle: Mutex<Vec<Conn>>,
    next_id: AtomicU64,
}

impl RpcPool {
    /// A pool for the socket at `path` (nothing is opened until the first call).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        RpcPool {
            path: path.into(),
            idle: Mutex::new(Vec::new()),
            next_id: AtomicU64::new(1),
        }
    }

    /// The socket's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn take(&self) -> Option<Conn> {
        self.idle.lock().ok()?.pop()
    }

    fn put(&self, conn: Conn) {
        if let Ok(mut idle) = self.idle.lock() {
            if idle.len() < MAX_IDLE {
                idle.push(conn);
            }
        }
    }

    /// Calls `method` with `params`.
    ///
    /// # Errors
    /// [`CallError::Rpc`] with the server's error, or [`CallError::Unreachable`].
    pub async fn call(&self, method: &str, params: &Value) -> Result<Value, CallError> {
        if let Some(conn) = self.take() {
            match self.call_on(conn, method, params).await {
                Err(Attempt::NotSent) => {}
                Err(Attempt::Failed(e)) => return Err(e),
                Ok(v) => return Ok(v),
            }
        }
        let conn = Conn::open(&self.path).await?;
        self.call_on(conn, method, params)
            .await
            .map_err(|a| match a {
                Attempt::NotSent => CallError::Unreachable("the connection was closed".into()),
                Attempt::Failed(e) => e,
            })
    }

    async fn call_on(
        &self,
        mut conn: Conn,
        method: &str,
        params: &Value,
    ) -> Result<Value, Attempt> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let answer = conn.call(id, method, params).await?;
        self.put(conn);
        answer.map_err(|e| Attempt::Failed(CallError::Rpc(e)))
    }
}

/// One call on a connection of its own, with the request id `id` (the pool's calls number
/// theirs): for a call the receiving side must tell apart, as the `rpc_command` hook does the
/// plugin's own calls to lightningd.
///
/// # Errors
/// [`CallError::Rpc`] with the server's error, or [`CallError::Unreachable`].
pub async fn call_with_id(
    path: &Path,
    id: &str,
    method: &str,
    params: &Value,
) -> Result<Value, CallError> {
    let mut conn = Conn::open(path).await?;
    match conn.call(id, method, params).await {
        Ok(answer) => answer.map_err(CallError::Rpc),
        Err(Attempt::NotSent) => Err(CallError::Unreachable(format!(
            "{}: the connection was closed",
            path.display()
        ))),
        Err(Attempt::Failed(CallError::Unreachable(why))) => {
            Err(CallError::Unreachable(format!("{}: {why}", path.display())))
        }
        Err(Attempt::Failed(e)) => Err(e),
    }
}

enum Attempt {
    NotSent,
    Failed(CallError),
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::UnixListener;

    /// Answers `answers` requests on one connection with `{"n": k}`, then closes it.
    async fn serve_one(listener: &UnixListener, answers: usize, first: usize) {
        let (mut s, _) = listener.accept().await.unwrap();
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        for k in 0..answers {
            let req: Value = loop {
                let mut de = serde_json::Deserializer::from_slice(&buf).into_iter::<Value>();
                if let Some(Ok(v)) = de.next() {
                    let end = de.byte_offset();
                    buf.drain(..end);
                    break v;
                }
                let n = s.read(&mut chunk).await.unwrap();
                buf.extend_from_slice(&chunk[..n]);
            };
            let out = if req["method"] == "fail" {
                json!({"jsonrpc": "2.0", "id": req["id"], "error": {"code": 905, "message": "Unknown invoice", "data": {"x": 1}}})
            } else {
                json!({"jsonrpc": "2.0", "id": req["id"], "result": {"n": first + k}})
            };
            s.write_all(format!("{out}\n\n").as_bytes()).await.unwrap();
        }
    }

    #[tokio::test]
    async fn answers_errors_and_a_closed_pooled_connection() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sock");
        let listener = UnixListener::bind(&path).unwrap();
        let pool = RpcPool::new(&path);
        let server = async {
            serve_one(&listener, 2, 0).await;
            // The first connection is closed now; the pool still holds it.
            serve_one(&listener, 1, 10).await;
        };
        let client = async {
            assert_eq!(pool.call("x", &json!({})).await, Ok(json!({"n": 0})));
            let e = pool.call("fail", &json!([])).await.unwrap_err();
            assert_eq!(
                e,
                CallError::Rpc(
                    json!({"code": 905, "message": "Unknown invoice", "data": {"x": 1}})
                )
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            // Written to the dead connection first (refused at once), then sent on a new one.
            assert_eq!(pool.call("x", &json!({})).await, Ok(json!({"n": 10})));
        };
        tokio::join!(server, client);
        drop(listener);
        std::fs::remove_file(&path).unwrap();
        let e = pool.call("x", &json!({})).await.unwrap_err();
        assert!(matches!(e, CallError::Unreachable(_)), "{e:?}");
        assert!(e.to_error_object("invoiced", &path)["message"]
            .as_str()
            .unwrap()
            .starts_with("invoiced is unreachable at "));
    }

    #[tokio::test]
    async fn call_with_id_sends_its_id_and_refuses_an_answer_that_is_not_json_rpc() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sock");
        let listener = UnixListener::bind(&path).unwrap();
        let server = async {
            for answer in ["{\"result\": {\"ok\": true}}\n\n", "not json\n\n", ""] {
                let (mut s, _) = listener.accept().await.unwrap();
                let mut buf = vec![0u8; 4096];
                let n = s.read(&mut buf).await.unwrap();
                let req: Value = serde_json::from_slice(&buf[..n]).unwrap();
                assert_eq!(
                    (req["id"].clone(), req["method"].clone()),
                    (json!("cln:x#1"), json!("m"))
                );
                s.write_all(answer.as_bytes()).await.unwrap();
            }
        };
        let client = async {
            let ok = call_with_id(&path, "cln:x#1", "m", &json!({})).await;
            assert_eq!(ok, Ok(json!({"ok": true})));
            let e = call_with_id(&path, "cln:x#1", "m", &json!({}))
                .await
                .unwrap_err();
            assert!(e.to_string().contains("not JSON-RPC"), "{e}");
            let e = call_with_id(&path, "cln:x#1", "m", &json!({}))
                .await
                .unwrap_err();
            assert!(e.to_string().contains("closed before answering"), "{e}");
        };
        tokio::join!(server, client);
    }
}
