//! The API's ceiling: axum serving `GET /` → `ok` on 2 worker threads (as many as the server gets on this
//! machine), no middleware, no logging, no database. Usage: `trivial [ADDR]` (default `127.0.0.1:0`); prints
//! `listening on http://ADDR` once bound, then serves until killed.

use axum::Router;
use axum::routing::get;

fn main() {
    let addr = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:0".to_owned());
    let runtime =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("tokio runtime");
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(&addr).await.expect("bind");
        println!("listening on http://{}", listener.local_addr().expect("local address"));
        let app = Router::new().route("/", get(|| async { "ok" }));
        axum::serve(listener, app).await.expect("serve");
    });
}
