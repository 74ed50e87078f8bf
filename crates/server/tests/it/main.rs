//! wsoauth-server integration tests: one binary, every test against a real server over HTTP.

mod browser;
mod common;
mod flow;
mod wire;
