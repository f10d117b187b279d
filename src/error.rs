//! Error classification shared by every module.
//!
//! Each module has its own `thiserror` enum; the ones that cross an I/O
//! boundary implement [`Classify`] so that retry loops retry only what can
//! succeed on a second attempt.

/// Whether an error may go away if the same operation is tried again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// A timeout, a refused connection, a node still warming up: retry with backoff.
    Transient,
    /// Bad data, a consensus violation, a misconfiguration: retrying cannot help.
    Permanent,
}

/// Implemented by errors that know whether they are worth retrying.
pub trait Classify {
    /// The class of this error.
    fn class(&self) -> ErrorClass;

    /// Shorthand for `self.class() == ErrorClass::Transient`.
    fn is_transient(&self) -> bool {
        self.class() == ErrorClass::Transient
    }
}

/// Shortens every run of more than 128 hex digits (longer than a hash) in `message`
/// to its first and last 8 digits and its length in bytes, so that an error
/// quoting trie nodes or raw transactions stays one readable line:
/// `0xf90211a0…8080 (532 bytes)`.
pub fn abbreviate_hex(message: &str) -> String {
    const KEEP: usize = 8;
    let mut out = String::with_capacity(message.len().min(512));
    let mut rest = message;
    while let Some(start) = rest.find(|c: char| c.is_ascii_hexdigit()) {
        out.push_str(&rest[..start]);
        let run = &rest[start..];
        let len = run
            .find(|c: char| !c.is_ascii_hexdigit())
            .unwrap_or(run.len());
        let digits = &run[..len];
        if len > 128 {
            out.push_str(&digits[..KEEP]);
            out.push('…');
            out.push_str(&digits[len - KEEP..]);
            out.push_str(&format!(" ({} bytes)", len / 2));
        } else {
            out.push_str(digits);
        }
        rest = &run[len..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::abbreviate_hex;

    #[test]
    fn long_hex_runs_are_shortened_short_ones_kept() {
        let node = "ab".repeat(300);
        let msg = format!("value mismatch at path 0x80: got Some(0x{node}), expected None");
        let short = abbreviate_hex(&msg);
        assert_eq!(
            short,
            "value mismatch at path 0x80: got Some(0xabababab…abababab (300 bytes)), expected None"
        );
        let hash = format!("root 0x{}", "1f".repeat(32));
        assert_eq!(abbreviate_hex(&hash), hash);
    }
}
