//! `gmrelay goat verify-header` on real Ethereum mainnet headers of every
//! shape (tests/fixtures/eth, sources in its README), and loud failures.

use std::process::Command;

fn run(file: &std::path::Path) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_gmrelay"))
        .args(["goat", "verify-header"])
        .arg(file)
        .env_remove("GMRELAY_CONFIG")
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

fn fixture(name: &str) -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join(format!("tests/fixtures/eth/{name}.json"))
}

#[test]
fn every_fixture_shape_matches() {
    for (name, shape) in [
        ("london", "London"),
        ("london_15537393", "London"),
        ("shanghai", "Shanghai"),
        ("cancun", "Cancun"),
        ("prague", "Prague"),
        ("prague_23094898", "Prague"),
        ("prague_24630100", "Prague"),
    ] {
        let (ok, text) = run(&fixture(name));
        assert!(ok, "{name}: {text}");
        assert!(
            text.contains(&format!("{shape} header")) && text.contains("match:"),
            "{name}: {text}"
        );
    }
}

#[test]
fn mismatch_and_unknown_field_fail_loudly() {
    let dir = tempfile::tempdir().unwrap();
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixture("cancun")).unwrap()).unwrap();
    v["timestamp"] = "0x1".into();
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, v.to_string()).unwrap();
    let (ok, text) = run(&bad);
    assert!(!ok && text.contains("MISMATCH"), "{text}");

    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixture("prague")).unwrap()).unwrap();
    v["slotNumber"] = "0x1".into();
    let unknown = dir.path().join("unknown.json");
    std::fs::write(&unknown, v.to_string()).unwrap();
    let (ok, text) = run(&unknown);
    assert!(!ok && text.contains("unknown field `slotNumber`"), "{text}");
}
