//! Running the `gmrelay` binary as an operator would.

#![allow(dead_code)]

use std::process::{Command, Output};

/// Runs `gmrelay args…` with `envs` (logs at `warn`) and waits for it.
pub fn gmrelay(args: &[&str], envs: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_gmrelay"));
    cmd.args(args).env("GMRELAY_LOG_LEVEL", "warn");
    for (k, v) in envs {
        cmd.env(k, v);
    }
    cmd.output().expect("gmrelay runs")
}

/// Stdout and stderr together, for assertions and failure messages.
pub fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}
