//! wsoauth-server integration tests: one binary, every test against a real server over HTTP.

mod api_comments;
mod api_projects;
mod api_tags;
mod api_tasks;
mod api_users;
mod audit;
mod authorize;
mod browser;
mod cache;
mod cli;
mod common;
mod consent;
mod demo;
mod flow;
mod keys;
mod limits;
mod nodes;
mod observe;
mod pages;
mod pkce;
mod reuse;
mod revoke;
mod tls;
mod transfer;
mod wire;
