//! A child process of an integration test, killed on drop.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A child process killed on drop; its first stdout line with `marker` is kept.
pub struct Proc {
    pub child: Child,
    pub line: String,
}

impl Proc {
    pub fn start(mut cmd: Command, marker: &str, log: &Path) -> Proc {
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(log).unwrap())
            .spawn()
            .expect("starts");
        let out = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let wanted = marker.to_string();
        std::thread::spawn(move || {
            let mut sent = false;
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if !sent && line.contains(&wanted) {
                    let _ = tx.send(line);
                    sent = true;
                }
            }
        });
        let line = rx
            .recv_timeout(Duration::from_secs(90))
            .unwrap_or_else(|_| {
                panic!(
                    "no `{marker}` line; log:\n{}",
                    std::fs::read_to_string(log).unwrap_or_default()
                )
            });
        Proc { child, line }
    }
    /// The first `http://` word of the marker line.
    pub fn url(&self) -> String {
        self.line
            .split_whitespace()
            .find(|w| w.starts_with("http://"))
            .unwrap()
            .to_string()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
