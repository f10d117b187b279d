//! The cold path, without the cold build: `make setup-plan` in a copy of the
//! repository's set-up files (a fresh clone, as far as set-up can tell) with
//! an empty cache and an empty home must plan to build bitcoind and install
//! the pinned npm tools; a user's override that is not an executable is an
//! error naming the variable. Run through `make`, so the Makefile's exports
//! are in play (they once hid a broken first command behind a warm cache).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::cli::text;

/// A directory holding what `make setup-plan` reads: Makefile, scripts/,
/// tools/package.json (and no tools/node_modules).
fn fresh_clone() -> tempfile::TempDir {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(root.join("Makefile"), dir.path().join("Makefile")).unwrap();
    std::fs::create_dir_all(dir.path().join("scripts")).unwrap();
    for entry in std::fs::read_dir(root.join("scripts")).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(
            entry.path(),
            dir.path().join("scripts").join(entry.file_name()),
        )
        .unwrap();
    }
    std::fs::create_dir_all(dir.path().join("tools")).unwrap();
    std::fs::copy(
        root.join("tools/package.json"),
        dir.path().join("tools/package.json"),
    )
    .unwrap();
    dir
}

fn plan(clone: &Path, cache: &Path, home: &Path, envs: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new("make");
    cmd.args(["--no-print-directory", "-C"])
        .arg(clone)
        .arg("setup-plan")
        .env("GMRELAY_CACHE", cache)
        .env("HOME", home)
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("MAKEFLAGS")
        .env_remove("MAKELEVEL");
    for var in ["BITCOIND_EXE", "ANVIL_EXE", "CAST_EXE"] {
        cmd.env_remove(var);
    }
    for (k, v) in envs {
        cmd.env(k, v);
    }
    cmd.output().expect("make runs")
}

#[test]
fn an_empty_cache_plans_to_build_bitcoind_and_cometbft_and_install_the_npm_tools() {
    let clone = fresh_clone();
    let cache = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    let o = plan(clone.path(), cache.path(), home.path(), &[]);
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    let bitcoind: PathBuf = cache.path().join("bitcoind-kernel-0.4.1/bitcoind");
    assert!(
        t.lines().any(|l| l.starts_with("will build: bitcoind")
            && l.ends_with(&format!("-> {}", bitcoind.display()))),
        "{t}"
    );
    let cometbft: PathBuf = cache.path().join("cometbft-v0.38.25/cometbft");
    assert!(
        t.lines().any(|l| l
            == format!(
                "will build: cometbft go install github.com/cometbft/cometbft/cmd/cometbft@v0.38.25 -> {}",
                cometbft.display()
            )),
        "{t}"
    );
    let tools = clone.path().join("tools/node_modules");
    for (tool, pkg, path) in [
        (
            "anvil",
            "@foundry-rs/anvil-linux-amd64@1.7.1",
            tools.join(".bin/anvil"),
        ),
        (
            "cast",
            "@foundry-rs/cast-linux-amd64@1.7.1",
            tools.join(".bin/cast"),
        ),
        ("solc", "solc@0.8.23", tools.join("solc")),
        ("x402", "@x402/fetch@2.27.0", tools.join("@x402/fetch")),
    ] {
        let want = format!("will install: {tool} npm {pkg} -> {}", path.display());
        assert!(t.lines().any(|l| l == want), "missing `{want}` in:\n{t}");
    }
    // One line per tool, each either present or planned; nothing installed.
    for line in t.lines() {
        assert!(
            line.starts_with("present: ")
                || line.starts_with("will build: ")
                || line.starts_with("will install: "),
            "unexpected line `{line}`"
        );
    }
    assert!(
        !bitcoind.exists() && !cometbft.exists() && !tools.exists(),
        "the plan installed something"
    );
}

#[test]
fn a_user_override_is_used_and_one_that_is_not_executable_is_an_error_naming_it() {
    let clone = fresh_clone();
    let cache = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    let missing = cache.path().join("no-such-bitcoind");
    let o = plan(
        clone.path(),
        cache.path(),
        home.path(),
        &[("BITCOIND_EXE", missing.to_str().unwrap())],
    );
    assert!(!o.status.success(), "{}", text(&o));
    let t = text(&o);
    assert!(
        t.contains(&format!(
            "BITCOIND_EXE={} is not an executable file",
            missing.display()
        )),
        "{t}"
    );
    // An executable override is taken as it is: nothing to build.
    let exe = which_true();
    let o = plan(
        clone.path(),
        cache.path(),
        home.path(),
        &[("BITCOIND_EXE", exe.as_str()), ("ANVIL_EXE", exe.as_str())],
    );
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    assert!(
        t.contains(&format!("present: bitcoind {exe} (BITCOIND_EXE)")),
        "{t}"
    );
    assert!(
        t.contains(&format!("present: anvil {exe} (ANVIL_EXE)")),
        "{t}"
    );
    assert!(t.contains("will install: cast"), "{t}");
}

/// An executable every machine has.
fn which_true() -> String {
    ["/usr/bin/true", "/bin/true"]
        .iter()
        .find(|p| Path::new(p).is_file())
        .expect("true(1)")
        .to_string()
}
