//! Integration tests of the `poi` command, run as real processes: a devnet on loopback ports,
//! the CLI against it, crashes and restarts, and the CLI's own behaviour. One module per topic.

mod acceptance;
mod commands;
mod crash;
mod gov;
mod keys;
mod localnet;
mod mainjob;
mod market;
mod stake;
mod work;

use std::fs::File;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ed25519_dalek::SigningKey;
use serde_json::Value;

/// The binary under test.
pub(crate) const POI: &str = env!("CARGO_BIN_EXE_poi");

/// Held by the tests that run many node processes (the devnet main job, the localnets), so
/// that they do not run at the same time: together they are more processes than the 2-core
/// CI machine schedules in time, and a starved devnet misses its first epoch's work.
pub(crate) static MANY_PROCESSES: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Takes [`MANY_PROCESSES`] (a test that panicked while holding it does not poison the rest).
pub(crate) fn many_processes() -> std::sync::MutexGuard<'static, ()> {
    MANY_PROCESSES
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
/// Block interval of test devnets.
pub(crate) const BLOCK_INTERVAL_MS: &str = "50";
/// Balance of each devnet test account: 1,000,000 POI in base units.
pub(crate) const DEVNET_BALANCE: u128 = 1_000_000_000_000_000;
/// How long a node may take to answer `/health` after it was started.
const READY_DEADLINE: Duration = Duration::from_secs(60);
/// Seconds before an HTTP request of a test gives up.
const HTTP_TIMEOUT: Duration = Duration::from_secs(10);

/// `poi` with no inherited home, password or log settings.
pub(crate) fn poi() -> assert_cmd::Command {
    let mut cmd = assert_cmd::Command::new(POI);
    cmd.env_remove("POI_HOME")
        .env_remove("POI_PASSWORD")
        .env_remove("POI_LOG")
        .timeout(Duration::from_secs(60));
    cmd
}

/// A port on 127.0.0.1 that was free a moment ago.
pub(crate) fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind loopback")
        .local_addr()
        .expect("local addr")
        .port()
}

/// Asserts that a failed command printed exactly one stderr line, `poi: error: ...`; returns it.
#[track_caller]
pub(crate) fn one_error_line(output: &std::process::Output) -> String {
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(
        !output.status.success(),
        "expected failure, stderr {stderr:?}"
    );
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "expected one stderr line, got {stderr:?}");
    assert!(lines[0].starts_with("poi: error: "), "{stderr:?}");
    lines[0].to_string()
}

/// Stdout of a command that must succeed.
#[track_caller]
pub(crate) fn stdout_of(cmd: &mut assert_cmd::Command) -> String {
    let output = cmd.output().expect("run poi");
    assert!(
        output.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("utf-8 stdout")
}

/// The signing key of a plaintext devnet key file `HOME/keys/NAME.json`.
pub(crate) fn devnet_key(home: &Path, name: &str) -> SigningKey {
    let path = home.join("keys").join(format!("{name}.json"));
    let text = std::fs::read_to_string(&path).expect("read key file");
    let file: Value = serde_json::from_str(&text).expect("key file is JSON");
    assert_eq!(file["insecure_plaintext"], true, "{path:?}");
    let seed: [u8; 32] = hex::decode(file["seed"].as_str().expect("seed"))
        .expect("hex seed")
        .try_into()
        .expect("32-byte seed");
    SigningKey::from_bytes(&seed)
}

/// A blocking HTTP client for a node's API.
pub(crate) struct Api {
    base: String,
    agent: ureq::Agent,
}

impl Api {
    pub(crate) fn new(addr: SocketAddr) -> Api {
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(HTTP_TIMEOUT))
            .build();
        Api {
            base: format!("http://{addr}"),
            agent: ureq::Agent::new_with_config(config),
        }
    }

    fn finish(
        url: &str,
        response: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    ) -> Result<(u16, Value), String> {
        let mut response = response.map_err(|e| format!("{url}: {e}"))?;
        let status = response.status().as_u16();
        let text = response
            .body_mut()
            .read_to_string()
            .map_err(|e| format!("{url}: {e}"))?;
        let value = serde_json::from_str(&text)
            .map_err(|e| format!("{url} answered {status} with non-JSON {text:?}: {e}"))?;
        Ok((status, value))
    }

    /// GET `path`, or why no answer came.
    pub(crate) fn try_get(&self, path: &str) -> Result<(u16, Value), String> {
        let url = format!("{}{path}", self.base);
        Self::finish(&url, self.agent.get(&url).call())
    }

    /// GET `path`: status and JSON.
    #[track_caller]
    pub(crate) fn get(&self, path: &str) -> (u16, Value) {
        self.try_get(path).unwrap_or_else(|e| panic!("{e}"))
    }

    /// GET `path`, which must answer 200.
    #[track_caller]
    pub(crate) fn get_ok(&self, path: &str) -> Value {
        let (status, body) = self.get(path);
        assert_eq!(status, 200, "GET {path}: {body}");
        body
    }

    /// POST a signed transaction.
    #[track_caller]
    pub(crate) fn submit(&self, tx: &poi_core::tx::Tx) -> (u16, Value) {
        let url = format!("{}/txs", self.base);
        let body = serde_json::json!({ "tx": hex::encode(tx.encode()) });
        Self::finish(&url, self.agent.post(&url).send_json(&body)).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Balance and nonce of an account.
    #[track_caller]
    pub(crate) fn account(&self, address: &str) -> (u128, u64) {
        let body = self.get_ok(&format!("/accounts/{address}"));
        let balance = body["balance"]
            .as_str()
            .expect("balance string")
            .parse()
            .expect("decimal balance");
        (balance, body["nonce"].as_u64().expect("nonce"))
    }
}

/// A running `poi` node process, killed (SIGKILL) and reaped when dropped.
pub(crate) struct Node {
    child: Option<Child>,
    pub(crate) home: PathBuf,
    pub(crate) api: Api,
    log: PathBuf,
}

impl Node {
    /// `poi devnet --home HOME` on fresh loopback ports; waits until the API answers.
    pub(crate) fn devnet(home: &Path, log_dir: &Path) -> Node {
        Node::devnet_with_interval(home, log_dir, BLOCK_INTERVAL_MS)
    }

    /// [`Node::devnet`] with another block interval (milliseconds): the chain alone
    /// (`--no-agents`), so a test's jobs and accounts are its own.
    pub(crate) fn devnet_with_interval(home: &Path, log_dir: &Path, interval_ms: &str) -> Node {
        Node::devnet_with(home, log_dir, interval_ms, &["--no-agents"])
    }

    /// `poi devnet` with `extra` arguments (the main job when `extra` is empty).
    pub(crate) fn devnet_with(
        home: &Path,
        log_dir: &Path,
        interval_ms: &str,
        extra: &[&str],
    ) -> Node {
        let api_addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().expect("addr");
        let p2p_addr = format!("127.0.0.1:{}", free_port());
        let mut args = vec![
            "devnet".to_string(),
            "--home".to_string(),
            home.display().to_string(),
            "--api-addr".to_string(),
            api_addr.to_string(),
            "--p2p-addr".to_string(),
            p2p_addr,
            "--block-interval-ms".to_string(),
            interval_ms.to_string(),
        ];
        args.extend(extra.iter().map(|a| a.to_string()));
        Node::spawn(&args, home, api_addr, log_dir)
    }

    /// `poi node start --home HOME` (addresses from its config.toml); waits until ready.
    pub(crate) fn start(home: &Path, log_dir: &Path) -> Node {
        let api_addr = poi_node::home::Home::new(home)
            .config()
            .expect("config.toml")
            .api_addr;
        let args = [
            "node".to_string(),
            "start".to_string(),
            "--home".to_string(),
            home.display().to_string(),
        ];
        Node::spawn(&args, home, api_addr, log_dir)
    }

    fn spawn(args: &[String], home: &Path, api_addr: SocketAddr, log_dir: &Path) -> Node {
        let log = log_dir.join(format!(
            "poi-{}-{}.log",
            args[0],
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .expect("clock")
                .as_nanos()
        ));
        let out = File::create(&log).expect("log file");
        let err = out.try_clone().expect("log file");
        let child = Command::new(POI)
            .args(args)
            .env_remove("POI_HOME")
            .env_remove("POI_PASSWORD")
            .env("POI_LOG", "warn,poi_node=info")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .expect("spawn poi");
        let mut node = Node {
            child: Some(child),
            home: home.to_path_buf(),
            api: Api::new(api_addr),
            log,
        };
        node.wait_ready();
        node
    }

    /// The process id.
    pub(crate) fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// The node's output so far.
    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + READY_DEADLINE;
        loop {
            if let Some(status) = self
                .child
                .as_mut()
                .expect("running")
                .try_wait()
                .expect("wait")
            {
                panic!(
                    "poi exited with {status} before it was ready:\n{}",
                    self.log()
                );
            }
            if let Ok((200, _)) = self.api.try_get("/health") {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "node not ready after {READY_DEADLINE:?}:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// Waits until the committed height is at least `height`; returns the height reached.
    #[track_caller]
    pub(crate) fn wait_height(&self, height: u64) -> u64 {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let now = self.api.get_ok("/blocks/latest")["height"]
                .as_u64()
                .expect("height");
            if now >= height {
                return now;
            }
            assert!(
                Instant::now() < deadline,
                "height {now} never reached {height}:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL: no destructors, no flush, no clean shutdown.
    pub(crate) fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Sends `signal` and waits (bounded) for the process to exit; returns its status.
    pub(crate) fn signal_and_wait(
        &mut self,
        signal: libc::c_int,
        within: Duration,
    ) -> std::process::ExitStatus {
        let pid = libc::pid_t::try_from(self.pid()).expect("pid fits");
        // SAFETY: kill(2) on our own child's pid has no memory-safety preconditions.
        let sent = unsafe { libc::kill(pid, signal) };
        assert_eq!(sent, 0, "kill({pid}, {signal}) failed");
        let deadline = Instant::now() + within;
        let child = self.child.as_mut().expect("running");
        loop {
            if let Some(status) = child.try_wait().expect("wait") {
                self.child = None;
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "poi did not exit within {within:?} of signal {signal}:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill();
    }
}
