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
