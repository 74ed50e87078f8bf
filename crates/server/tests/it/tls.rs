//! Built-in HTTPS: `wsoauth serve --tls-cert --tls-key` answers over TLS (HTTP/1.1 and HTTP/2 by ALPN), its
//! issuer is https, its cookies are Secure; a bad certificate stops the start with a clear message.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::{ClientConfig, RootCertStore};

use crate::common::temp_dir;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/it/tls").join(name)
}

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn wsoauth(dir: &std::path::Path, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_wsoauth"));
    command
        .args(args)
        .current_dir(dir)
        .env_remove("WSOAUTH_CONFIG")
        .env_remove("WSOAUTH_PUBLIC_URL")
        .env("WSOAUTH_DATABASE_URL", format!("sqlite://{}", dir.join("tls.db").display()))
        .env("WSOAUTH_BOOTSTRAP_PASSWORD", "tls-owner-password");
    command
}

fn connector() -> TlsConnector {
    let mut roots = RootCertStore::empty();
    roots.add(CertificateDer::from_pem_file(fixture("test-ca.pem")).unwrap()).unwrap();
    let provider = Arc::new(tokio_rustls::rustls::crypto::aws_lc_rs::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    TlsConnector::from(Arc::new(config))
}

/// One HTTP/1.1 request over TLS; the whole response as text.
async fn https_get(port: u16, path: &str) -> std::io::Result<String> {
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
    let mut tls = connector().connect(ServerName::try_from("localhost").unwrap(), tcp).await?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: localhost:{port}\r\nConnection: close\r\n\r\n");
    tls.write_all(request.as_bytes()).await?;
    let mut response = Vec::new();
    // a server may close without a TLS close_notify: what arrived before the end is the answer
    if let Err(error) = tls.read_to_end(&mut response).await
        && (error.kind() != std::io::ErrorKind::UnexpectedEof || response.is_empty())
    {
        return Err(error);
    }
    Ok(String::from_utf8_lossy(&response).into_owned())
}

#[tokio::test]
async fn serves_https_with_a_certificate_and_key() {
    let dir = temp_dir();
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let cert = fixture("test-cert.pem");
    let key = fixture("test-key.pem");
    let _server = Server(
        wsoauth(
            &dir,
            &["serve", "--listen", &listen, "--tls-cert", cert.to_str().unwrap(), "--tls-key", key.to_str().unwrap()],
        )
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap(),
    );
    let mut metadata = None;
    for _ in 0..100 {
        if let Ok(response) = https_get(port, "/.well-known/oauth-authorization-server").await {
            metadata = Some(response);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let metadata = metadata.expect("the server answers over TLS");
    assert!(metadata.starts_with("HTTP/1.1 200"), "{metadata}");
    assert!(metadata.contains(&format!(r#""issuer":"https://127.0.0.1:{port}""#)), "{metadata}");

    let login = https_get(port, "/login").await.unwrap();
    assert!(login.starts_with("HTTP/1.1 200"), "{login}");
    let cookie = login.lines().find(|l| l.to_ascii_lowercase().starts_with("set-cookie:")).unwrap();
    assert!(cookie.contains("__Host-wsoauth_csrf=") && cookie.contains("Secure"), "{cookie}");

    // plain HTTP on the TLS port gets no page
    let mut tcp = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    tcp.write_all(b"GET /login HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await.unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), tcp.read_to_end(&mut answer)).await;
    assert!(!String::from_utf8_lossy(&answer).contains("200 OK"));
}

#[test]
fn a_bad_certificate_or_half_a_pair_stops_the_start() {
    let dir = temp_dir();
    let listen = format!("127.0.0.1:{}", free_port());
    let missing = dir.join("missing.pem");
    let cert = fixture("test-cert.pem");
    for args in [
        vec![
            "serve",
            "--listen",
            &listen,
            "--tls-cert",
            missing.to_str().unwrap(),
            "--tls-key",
            missing.to_str().unwrap(),
        ],
        vec!["serve", "--listen", &listen, "--tls-cert", cert.to_str().unwrap(), "--tls-key", cert.to_str().unwrap()],
        vec!["serve", "--listen", &listen, "--tls-cert", cert.to_str().unwrap()],
    ] {
        let output = wsoauth(&dir, &args).output().unwrap();
        assert!(!output.status.success(), "{args:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("tls") || stderr.contains("TLS"), "{args:?}: {stderr}");
    }
}
