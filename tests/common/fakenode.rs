//! A small JSON-RPC node over HTTP on a free loopback port, answering from
//! a closure: the hostile or lagging node of the trust tests. It speaks just
//! enough HTTP/1.1 for reqwest and alloy (one request per connection,
//! `Content-Length` bodies, JSON-RPC batches as arrays), counts the calls per
//! method, and stops when dropped.

#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use serde_json::{json, Value};

/// What the node answers to one call: a result, or a JSON-RPC error object
/// (see [`rpc_error`]).
pub type Handler = dyn Fn(&str, &Value) -> Result<Value, Value> + Send + Sync;

/// A JSON-RPC error object.
pub fn rpc_error(code: i64, message: impl Into<String>) -> Value {
    json!({"code": code, "message": message.into()})
}

/// A running fake node.
pub struct FakeNode {
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    calls: Arc<Mutex<HashMap<String, Vec<Value>>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    port: u16,
}

impl FakeNode {
    /// Starts a node that answers each call with `handler(method, params)`.
    pub fn start(
        handler: impl Fn(&str, &Value) -> Result<Value, Value> + Send + Sync + 'static,
    ) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        let port = listener.local_addr().unwrap().port();
        let calls: Arc<Mutex<HashMap<String, Vec<Value>>>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let handler: Arc<Handler> = Arc::new(handler);
        let thread = {
            let (calls, stop) = (calls.clone(), stop.clone());
            std::thread::spawn(move || {
                for conn in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(conn) = conn else { continue };
                    let (calls, handler) = (calls.clone(), handler.clone());
                    std::thread::spawn(move || serve(conn, &calls, &*handler));
                }
            })
        };
        FakeNode {
            url: format!("http://127.0.0.1:{port}"),
            calls,
            stop,
            thread: Some(thread),
            port,
        }
    }

    /// The parameters of every call of `method` so far.
    pub fn calls(&self, method: &str) -> Vec<Value> {
        self.calls
            .lock()
            .unwrap()
            .get(method)
            .cloned()
            .unwrap_or_default()
    }
}

impl Drop for FakeNode {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve(conn: TcpStream, calls: &Mutex<HashMap<String, Vec<Value>>>, handler: &Handler) {
    let mut reader = BufReader::new(conn.try_clone().expect("clone the socket"));
    loop {
        // Request line and headers.
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let mut length = 0usize;
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                if k.eq_ignore_ascii_case("content-length") {
                    length = v.trim().parse().unwrap_or(0);
                }
            }
        }
        let mut body = vec![0u8; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let request: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        let answer = match &request {
            Value::Array(batch) => {
                Value::Array(batch.iter().map(|r| one(r, calls, handler)).collect())
            }
            r => one(r, calls, handler),
        };
        let payload = answer.to_string();
        let response = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{payload}",
            payload.len()
        );
        let mut w = &conn;
        if w.write_all(response.as_bytes()).is_err() {
            return;
        }
    }
}

fn one(request: &Value, calls: &Mutex<HashMap<String, Vec<Value>>>, handler: &Handler) -> Value {
    let method = request["method"].as_str().unwrap_or_default().to_string();
    let params = request.get("params").cloned().unwrap_or(Value::Null);
    calls
        .lock()
        .unwrap()
        .entry(method.clone())
        .or_default()
        .push(params.clone());
    let id = request.get("id").cloned().unwrap_or(Value::Null);
    match handler(&method, &params) {
        Ok(result) => json!({"jsonrpc": "2.0", "id": id, "result": result}),
        Err(error) => json!({"jsonrpc": "2.0", "id": id, "error": error}),
    }
}

/// Forwards one JSON-RPC body to `upstream` (`http://host:port`) and
/// returns the answer's JSON (plain HTTP/1.1, `Connection: close`).
pub fn forward(upstream: &str, body: &Value) -> Result<Value, String> {
    let addr = upstream
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string();
    let mut conn = TcpStream::connect(&addr).map_err(|e| e.to_string())?;
    let payload = body.to_string();
    let request = format!(
        "POST / HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{payload}",
        payload.len()
    );
    conn.write_all(request.as_bytes())
        .map_err(|e| e.to_string())?;
    let mut raw = Vec::new();
    conn.read_to_end(&mut raw).map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&raw);
    let (_, body) = text.split_once("\r\n\r\n").ok_or("no HTTP body")?;
    serde_json::from_str(body).map_err(|e| format!("{e}: {body}"))
}

/// What a [`FakeNode::proxy`] let through or refused.
#[derive(Debug, Default, Clone)]
pub struct ProxyLog {
    /// Raw transactions forwarded.
    pub accepted: usize,
    /// Requests refused, with the reason.
    pub refused: Vec<String>,
}

impl FakeNode {
    /// A JSON-RPC proxy in front of `upstream` that answers with an error
    /// instead of forwarding whatever `refuse(method, params)` names a
    /// reason for.
    pub fn proxy(
        upstream: String,
        refuse: impl Fn(&str, &Value) -> Option<String> + Send + Sync + 'static,
        log: Arc<Mutex<ProxyLog>>,
    ) -> Self {
        FakeNode::start(move |method, params| {
            if let Some(reason) = refuse(method, params) {
                log.lock().unwrap().refused.push(reason.clone());
                return Err(rpc_error(-32000, reason));
            }
            if method == "eth_sendRawTransaction" {
                log.lock().unwrap().accepted += 1;
            }
            let answer = forward(
                &upstream,
                &json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}),
            )
            .map_err(|e| rpc_error(-32603, format!("proxy: {e}")))?;
            match answer.get("error") {
                // Passed on whole: revert data included.
                Some(e) => Err(e.clone()),
                None => Ok(answer["result"].clone()),
            }
        })
    }
}
