//! wsoauth: a Worksection-compatible OAuth 2.0 authorization server and API.

pub mod admin;
pub mod api;
pub mod audit;
mod bearer;
pub mod cli;
pub mod config;
pub mod demo;
pub mod jwt;
pub mod limits;
pub mod logging;
mod memory;
mod oauth;
pub mod observe;
mod pages;
pub mod params;
pub mod password;
#[cfg(test)]
mod properties_tests;
pub mod startup;
pub mod state;
pub mod tls;
mod web;

pub use config::Settings;
pub use startup::{Running, StartError, prepare, router, spawn};
pub use state::{AppState, Shared};
