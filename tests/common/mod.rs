//! Shared helpers of the integration tests.
pub mod anvil;
pub mod cli;
pub mod devnet;
pub mod fakenode;
pub mod metis;
pub mod proc;
