//! A JSON-RPC client of one unix socket (invoiced's or lightningd's), on `cln-rpc`, with a pool of
//! open connections so that concurrent calls neither wait for each other nor reconnect each time.
//!
//! A call either gets the server's answer (`Ok` or [`CallError::Rpc`] with its error object,
//! passed on unchanged) or fails to reach it ([`CallError::Unreachable`]). A pooled connection
//! that the server closed fails when the request is written (a unix socket reports a gone peer
//! at once), before anything was sent: that call is retried once on a fresh connection. A
//! connection that fails after its request was written is dropped and the call reported
//! unreachable, since the server may or may not have acted on it.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use cln_rpc::{ClnRpc, RpcError};
use serde_json::{json, Value};

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

/// Pooled connections to one socket.
pub struct RpcPool {
    path: PathBuf,
    idle: Mutex<Vec<ClnRpc>>,
}

impl RpcPool {
    /// A pool for the socket at `path` (nothing is opened until the first call).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        RpcPool {
            path: path.into(),
            idle: Mutex::new(Vec::new()),
        }
    }

    /// The socket's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn take(&self) -> Option<ClnRpc> {
        self.idle.lock().ok()?.pop()
    }

    fn put(&self, conn: ClnRpc) {
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
        let conn = ClnRpc::new(&self.path)
            .await
            .map_err(|e| CallError::Unreachable(format!("{e:#}")))?;
        self.call_on(conn, method, params)
            .await
            .map_err(|a| match a {
                Attempt::NotSent => CallError::Unreachable("the connection was closed".into()),
                Attempt::Failed(e) => e,
            })
    }

    async fn call_on(
        &self,
        mut conn: ClnRpc,
        method: &str,
        params: &Value,
    ) -> Result<Value, Attempt> {
        match conn.call_raw::<Value, Value>(method, params).await {
            Ok(v) => {
                self.put(conn);
                Ok(v)
            }
            Err(RpcError {
                code: Some(code),
                message,
                data,
            }) => {
                self.put(conn);
                let mut e = json!({ "code": code, "message": message });
                if let Some(d) = data {
                    e["data"] = d;
                }
                Err(Attempt::Failed(CallError::Rpc(e)))
            }
            Err(e) if e.message.starts_with("Error passing request") => Err(Attempt::NotSent),
            Err(e) => Err(Attempt::Failed(CallError::Unreachable(e.message))),
        }
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
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let unreachable =
        |e: std::io::Error| CallError::Unreachable(format!("{}: {e}", path.display()));
    let mut stream = tokio::net::UnixStream::connect(path)
        .await
        .map_err(unreachable)?;
    let request = json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params });
    stream
        .write_all(request.to_string().as_bytes())
        .await
        .map_err(unreachable)?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    // An answer ends with a blank line (Core Lightning's framing).
    while !buf.ends_with(b"\n\n") {
        match stream.read(&mut chunk).await.map_err(unreachable)? {
            0 => {
                return Err(CallError::Unreachable(format!(
                    "{}: closed before answering",
                    path.display()
                )))
            }
            n => buf.extend_from_slice(&chunk[..n]),
        }
    }
    let answer: Value = serde_json::from_slice(&buf)
        .map_err(|e| CallError::Unreachable(format!("{}: {e}", path.display())))?;
    match answer.get("error") {
        Some(e) => Err(CallError::Rpc(e.clone())),
        None => Ok(answer["result"].clone()),
    }
}

enum Attempt {
    NotSent,
    Failed(CallError),
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
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
}
