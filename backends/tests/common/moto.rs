//! Runs moto's S3 server (from PyPI: `pip install 'moto[server]'`) on a
//! free loopback port for the duration of a test.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use prunedb_backends::S3Config;

/// The command CI and developers need for the S3 tests.
pub const INSTALL: &str = "pip install 'moto[server]'";

/// A running moto server; killed when dropped.
pub struct Moto {
    child: Option<Child>,
    port: u16,
    python: String,
}

impl Moto {
    /// Starts a server, or returns `None` (after saying so) when
    /// `PRUNEDB_SKIP_S3=1`. Panics, naming the install command, when moto
    /// is missing: a missing server must fail the run, not pass it.
    pub fn start(test: &str) -> Option<Moto> {
        if std::env::var("PRUNEDB_SKIP_S3").as_deref() == Ok("1") {
            eprintln!("SKIPPED {test}: PRUNEDB_SKIP_S3=1 (the S3 tests need `{INSTALL}`)");
            return None;
        }
        let python = std::env::var("PRUNEDB_PYTHON").unwrap_or_else(|_| "python3".to_owned());
        let probe = Command::new(&python)
            .args(["-c", "import moto.server"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        if !matches!(probe, Ok(s) if s.success()) {
            panic!(
                "the S3 tests need moto's S3 server, which `{python} -c 'import moto.server'` \
                 did not find. Install it with: {INSTALL}  (or set PRUNEDB_SKIP_S3=1 to skip \
                 these tests)"
            );
        }
        let port = free_port();
        let mut moto = Moto {
            child: None,
            port,
            python,
        };
        moto.spawn();
        Some(moto)
    }

    fn spawn(&mut self) {
        let child = Command::new(&self.python)
            .args([
                "-m",
                "moto.server",
                "-H",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("starting moto ({INSTALL}): {e}"));
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if self.request("GET", "/").is_some() {
                return;
            }
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    panic!(
                        "moto exited during startup with {status} (port {})",
                        self.port
                    );
                }
            }
            assert!(
                Instant::now() < deadline,
                "moto did not answer on 127.0.0.1:{} within 60 s",
                self.port
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Kills the server (moto keeps everything in memory, so its data goes
    /// with it).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Creates a bucket (moto accepts any credentials).
    pub fn create_bucket(&self, bucket: &str) {
        let status = self
            .request("PUT", &format!("/{bucket}"))
            .unwrap_or_else(|| panic!("moto on port {} did not answer", self.port));
        assert!(
            status == 200 || status == 409,
            "creating bucket {bucket}: HTTP {status}"
        );
    }

    /// Store settings for `bucket` with short retries, so outages surface
    /// within seconds.
    pub fn config(&self, bucket: &str, prefix: &str) -> S3Config {
        let mut c = S3Config::new(self.endpoint(), bucket)
            .with_credentials("testing", "testing")
            .with_prefix(prefix);
        c.max_retries = 2;
        c.retry_backoff_ms = 50;
        c.retry_timeout_ms = 5_000;
        c.connect_timeout_ms = 1_000;
        c.request_timeout_ms = 20_000;
        c.operation_timeout_ms = 60_000;
        c
    }

    /// One plain HTTP/1.0 request; the status code, or `None` when nothing
    /// answers.
    fn request(&self, method: &str, path: &str) -> Option<u16> {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).ok()?;
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .ok()?;
        let req = format!(
            "{method} {path} HTTP/1.0\r\nHost: 127.0.0.1:{}\r\nContent-Length: 0\r\n\r\n",
            self.port
        );
        stream.write_all(req.as_bytes()).ok()?;
        let mut response = Vec::new();
        let _ = stream.read_to_end(&mut response);
        let text = String::from_utf8_lossy(&response);
        text.split_whitespace().nth(1)?.parse().ok()
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        self.stop();
    }
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("binding a loopback port");
    listener.local_addr().expect("local address").port()
}
