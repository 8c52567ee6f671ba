//! A real desktop for the browser-desktop tests: an X display (Xvfb) whose root window is
//! painted a known colour, and a real VNC server (x11vnc) serving it on the loopback only, as
//! on a VM. Everything is installed by `.ci/run`; the processes end with the value.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The root window's colour, as `xsetroot` is given it and as RGB.
pub const ROOT_COLOUR: &str = "#3366cc";
pub const ROOT_RGB: [u8; 3] = [0x33, 0x66, 0xcc];
pub const WIDTH: u16 = 1024;
pub const HEIGHT: u16 = 768;

pub struct VncDesktop {
    pub display: String,
    /// Where the VNC server listens (127.0.0.1).
    pub addr: SocketAddr,
    processes: Vec<Child>,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

fn until(what: &str, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !ready() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits for the X server on `display` (number `number`), then paints its root window.
fn paint_root_window(display: &str, number: u32) {
    let socket = format!("/tmp/.X11-unix/X{number}");
    until("the X display is up", || Path::new(&socket).exists());
    until("the root window is painted", || {
        Command::new("xsetroot")
            .args(["-display", display, "-solid", ROOT_COLOUR])
            .status()
            .expect("xsetroot is installed (see .ci/run)")
            .success()
    });
}

#[allow(dead_code)]
impl VncDesktop {
    /// x11vnc on Xvfb, with no password.
    pub fn start() -> VncDesktop {
        Self::launch(None)
    }

    /// TigerVNC's own X server, asking for VNC authentication with the password in
    /// `password_file` (read at every connection).
    pub fn start_tigervnc(password_file: &Path) -> VncDesktop {
        Self::launch(Some(password_file))
    }

    fn launch(password_file: Option<&Path>) -> VncDesktop {
        // A display number no other test (or process) holds: tests of one process running
        // at once each take the next, before any of their servers made its lock file.
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let first = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed) * 7;
        let number = (first..first + 400)
            .map(|n| 100 + (std::process::id() + n) % 400)
            .find(|n| !Path::new(&format!("/tmp/.X{n}-lock")).exists())
            .expect("a free X display");
        let display = format!(":{number}");
        let port = free_port();
        if let Some(password_file) = password_file {
            return Self::tigervnc(display, number, port, password_file);
        }
        let mut processes = vec![Command::new("Xvfb")
            .args([
                display.as_str(),
                "-screen",
                "0",
                &format!("{WIDTH}x{HEIGHT}x24"),
                "-nolisten",
                "tcp",
                // Without it the server resets when its last client leaves, and the root
                // window loses its colour as soon as xsetroot exits.
                "-noreset",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("Xvfb is installed (see .ci/run)")];
        paint_root_window(&display, number);
        processes.push(
            Command::new("x11vnc")
                .args([
                    "-display",
                    &display,
                    "-localhost",
                    "-rfbport",
                    &port.to_string(),
                    "-nopw",
                    "-forever",
                    "-shared",
                    "-quiet",
                ])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("x11vnc is installed (see .ci/run)"),
        );
        VncDesktop::listening(display, port, processes)
    }

    /// The desktop, once its VNC server accepts connections on `port`.
    fn listening(display: String, port: u16, processes: Vec<Child>) -> VncDesktop {
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        until("the VNC server listens", || {
            TcpStream::connect(addr).is_ok()
        });
        VncDesktop {
            display,
            addr,
            processes,
        }
    }

    fn tigervnc(display: String, number: u32, port: u16, password_file: &Path) -> VncDesktop {
        let processes = vec![Command::new("Xvnc")
            .args([
                display.as_str(),
                "-geometry",
                &format!("{WIDTH}x{HEIGHT}"),
                "-depth",
                "24",
                "-localhost=1",
                "-rfbport",
                &port.to_string(),
                "-SecurityTypes",
                "VncAuth",
                "-rfbauth",
                password_file.to_str().expect("utf-8 path"),
                "-AlwaysShared=1",
                "-noreset",
                "-nolisten",
                "tcp",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("Xvnc is installed (see .ci/run)")];
        paint_root_window(&display, number);
        VncDesktop::listening(display, port, processes)
    }

    /// Starts an X client on the display, its output going to `log`; it ends with the
    /// desktop.
    pub fn run_logged(&mut self, program: &str, args: &[&str], log: &Path) {
        let output = std::fs::File::create(log).expect("log file");
        let child = Command::new(program)
            .args(args)
            .env("DISPLAY", &self.display)
            .stdout(output)
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("{program} (see .ci/run): {e}"));
        self.processes.push(child);
    }
}

impl Drop for VncDesktop {
    fn drop(&mut self) {
        for process in self.processes.iter_mut().rev() {
            let _ = process.kill();
            let _ = process.wait();
        }
    }
}
