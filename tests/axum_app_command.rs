//! `cargo run --example axum_app` as a user runs it: a process on `$PORT`,
//! answering HTTP, stopped with Ctrl-C (SIGINT) for a graceful shutdown.
#![cfg(unix)]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stdout,
    clippy::print_stderr
)]

mod example_binary;
use example_binary::example_binary;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use sea_orm::ConnectionTrait;

/// The example binary (see `example_binary`).
fn axum_app() -> PathBuf {
    example_binary("axum_app", "axum")
}

/// A port nobody listens on right now.
fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// The running example; killed if the test fails before stopping it.
struct Server(Option<Child>);

impl Server {
    fn child(&mut self) -> &mut Child {
        self.0.as_mut().unwrap()
    }

    /// Sends SIGINT (Ctrl-C) and waits up to 15 s for the exit.
    fn interrupt(mut self) -> ExitStatus {
        let mut child = self.0.take().unwrap();
        let status = Command::new("kill")
            .args(["-INT", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success(), "kill -INT failed: {status}");
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("axum_app did not exit within 15 s of SIGINT");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(child) = self.0.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// One HTTP/1.1 request on its own connection; returns (status, body).
fn request(port: u16, method: &str, body: Option<&str>) -> (u16, String) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut req = format!(
        "{method} /projects HTTP/1.1\r\n\
         Host: acme.example.test\r\n\
         X-Stub-Verified-Tenant: acme\r\n\
         Connection: close\r\n"
    );
    match body {
        Some(body) => req.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )),
        None => req.push_str("\r\n"),
    }
    stream.write_all(req.as_bytes()).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP response: {response:?}"));
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap_or_default();
    (status, body)
}

/// Starts the example on a free port, with `DATABASE_URL` set to `url` or
/// unset, and waits until it listens.
fn start(url: Option<&str>) -> (Server, u16) {
    let port = free_port();
    let mut command = Command::new(axum_app());
    match url {
        Some(url) => command.env("DATABASE_URL", url),
        None => command.env_remove("DATABASE_URL"),
    };
    let mut server = Server(Some(
        command
            .env("PORT", port.to_string())
            .stdin(Stdio::null())
            .spawn()
            .unwrap(),
    ));

    // It first connects and creates its tenants where missing, then listens.
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Some(status) = server.child().try_wait().unwrap() {
            panic!("axum_app exited before listening: {status}");
        }
        assert!(
            Instant::now() < deadline,
            "axum_app did not listen on 127.0.0.1:{port} within 30 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    (server, port)
}

#[test]
fn the_axum_app_example_serves_and_shuts_down_on_ctrl_c() {
    // Without DATABASE_URL: the demo fallback, a throwaway database.
    let (server, port) = start(None);
    let (status, body) = request(port, "POST", Some(r#"{"name":"Rocket skates"}"#));
    assert_eq!(status, 201, "{body}");
    let (status, body) = request(port, "GET", None);
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("Rocket skates"), "{body}");

    let status = server.interrupt();
    assert!(status.success(), "axum_app exited with {status}");
}

#[tokio::test]
async fn the_axum_app_example_serves_the_database_named_by_database_url() {
    let test_db = tenancy_testing::TestDatabase::create().await.unwrap();
    for run in 1..=2 {
        // The second run finds its tenants there and serves them again.
        let (server, port) = start(Some(test_db.url()));
        let (status, body) = request(port, "POST", Some(r#"{"name":"Rocket skates"}"#));
        assert_eq!(status, 201, "run {run}: {body}");
        let status = server.interrupt();
        assert!(status.success(), "run {run}: axum_app exited with {status}");
    }
    let conn = test_db.connect().await.unwrap();
    let rows = conn
        .query_all_raw(sea_orm::Statement::from_string(
            sea_orm::DbBackend::Postgres,
            "SELECT name FROM tenant_acme.project ORDER BY id",
        ))
        .await
        .unwrap();
    let names: Vec<String> = rows
        .iter()
        .map(|row| row.try_get_by_index(0).unwrap())
        .collect();
    assert_eq!(names, ["Rocket skates", "Rocket skates"]);
    conn.close().await.unwrap();
    test_db.close().await.unwrap();
}
