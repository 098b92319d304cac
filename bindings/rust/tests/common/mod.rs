//! A private broker per test: `$WEIGHTBUSD` started in a fresh directory with a unique name, stopped with
//! SIGTERM when dropped, its files and shared memory removed.
#![allow(dead_code)] // each test file uses a part of it

use std::env;
use std::fs;
use std::os::unix::fs::DirBuilderExt;
use std::path::PathBuf;
use std::process::{self, Child, Command};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use weightbus::{AttachOptions, Client, Error};

pub struct Broker {
    child: Child,
    name: String,
    dir: PathBuf,
    pub socket: PathBuf,
}

extern "C" {
    fn kill(pid: i32, signal: i32) -> i32;
    fn getuid() -> u32;
}
const SIGTERM: i32 = 15;

impl Broker {
    pub fn start() -> Broker {
        static STARTED: AtomicUsize = AtomicUsize::new(0);
        let exe =
            env::var_os("WEIGHTBUSD").expect("set WEIGHTBUSD to the weightbusd binary (tests/bindings/run.sh does)");
        let name = format!("rust-{}-{}", process::id(), STARTED.fetch_add(1, Ordering::SeqCst));
        let dir = env::temp_dir().join(format!("wbtest-{name}"));
        // 0700 whatever the umask: the broker and the library refuse a socket directory others can write.
        fs::DirBuilder::new().recursive(true).mode(0o700).create(&dir).expect("create the broker's directory");
        let socket = dir.join("broker.sock");
        let child = Command::new(exe)
            .arg("--foreground")
            .arg("--socket")
            .arg(&socket)
            .args(["--name", &name, "--log-level", "warn"])
            .spawn()
            .expect("start weightbusd");
        let broker = Broker { child, name, dir, socket };
        broker.wait_until_accepting();
        broker
    }

    pub fn options(&self, client_name: &str) -> AttachOptions {
        AttachOptions {
            socket_path: Some(self.socket.clone()),
            client_name: Some(client_name.to_string()),
            ..Default::default()
        }
    }

    pub fn attach(&self) -> Client {
        Client::attach(&self.options("rust-test")).expect("attach to the test broker")
    }

    /// SIGKILL: the broker dies without cleaning up, as in a crash.
    pub fn kill9(&mut self) {
        self.child.kill().expect("kill weightbusd");
        self.child.wait().expect("reap weightbusd");
    }

    /// The socket exists a moment before the broker listens on it: attach until it answers.
    fn wait_until_accepting(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match Client::attach(&self.options("probe")) {
                Ok(_) => return,
                Err(Error::Connect(_)) if Instant::now() < deadline => thread::sleep(Duration::from_millis(5)),
                Err(e) => panic!("weightbusd at {} does not accept: {e}", self.socket.display()),
            }
        }
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            unsafe { kill(self.child.id() as i32, SIGTERM) };
            let deadline = Instant::now() + Duration::from_secs(5);
            while let Ok(None) = self.child.try_wait() {
                if Instant::now() > deadline {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    break;
                }
                thread::sleep(Duration::from_millis(5));
            }
        }
        let _ = fs::remove_dir_all(&self.dir);
        // A broker killed with SIGKILL leaves its segment and host allocations (<segment>.a<N>) behind.
        let segment = format!("weightbus-{}-{}", unsafe { getuid() }, self.name);
        if let Ok(entries) = fs::read_dir("/dev/shm") {
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                if name == segment || name.starts_with(&format!("{segment}.a")) {
                    let _ = fs::remove_file(entry.path());
                }
            }
        }
    }
}
