//! A real desktop for the browser-desktop tests: an X display whose root window is painted
//! a known colour, and a real VNC server serving it on the loopback only, as on a VM: x11vnc
//! on Xvfb, or TigerVNC's Xvnc started by the client image's own `vnc-desktop.sh`.
//! Everything is installed by `.ci/run`; the processes end with the value.

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

/// A display number no other test (or process) holds: tests of one process running at
/// once each take the next, before any of their servers made its lock file.
fn free_display() -> u32 {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let first = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed) * 7;
    (first..first + 400)
        .map(|n| 100 + (std::process::id() + n) % 400)
        .find(|n| !Path::new(&format!("/tmp/.X{n}-lock")).exists())
        .expect("a free X display")
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
        Self::launch()
    }

    fn launch() -> VncDesktop {
        let number = free_display();
        let display = format!(":{number}");
        let port = free_port();
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

    /// The client image's own desktop script (`client/image/vnc-desktop.sh`): TigerVNC's
    /// X server asking for the password in `password_file`, with a session that paints the
    /// root window. The script starts both in the background and returns.
    pub fn start_image_desktop(password_file: &Path, scratch: &Path) -> VncDesktop {
        let number = free_display();
        let display = format!(":{number}");
        let port = free_port();
        let session = scratch.join("session.sh");
        std::fs::write(
            &session,
            format!("#!/bin/sh\nexec xsetroot -solid '{ROOT_COLOUR}'\n"),
        )
        .expect("session script");
        std::fs::set_permissions(
            &session,
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .expect("executable");
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/image/vnc-desktop.sh");
        let status = Command::new("bash")
            .arg(script)
            .env("LABLINK_X_DISPLAY", &display)
            .env("LABLINK_VNC_ADDR", format!("127.0.0.1:{port}"))
            .env("LABLINK_VNC_PASSWORD_FILE", password_file)
            .env("LABLINK_DESKTOP_GEOMETRY", format!("{WIDTH}x{HEIGHT}"))
            .env("LABLINK_DESKTOP_SESSION", &session)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("bash");
        assert!(status.success(), "vnc-desktop.sh failed: {status}");
        let desktop = VncDesktop::listening(display, port, Vec::new());
        let socket = format!("/tmp/.X11-unix/X{number}");
        until("the X display is up", || Path::new(&socket).exists());
        desktop
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
        // An X server a script started in the background is no child of the test's: found
        // by its command line.
        for pid in x_servers_of(&self.display) {
            let _ = Command::new("kill").arg(pid.to_string()).status();
        }
    }
}

/// The processes whose command line is an X server for `display`.
fn x_servers_of(display: &str) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let mut args = cmdline.split(|b| *b == 0);
            let program = args.next().unwrap_or_default();
            program.ends_with(b"Xvnc") && args.next() == Some(display.as_bytes())
        })
        .collect()
}

/// The local addresses listening on TCP `port` (IPv4 and IPv6, hex as the kernel writes
/// them).
#[allow(dead_code)]
pub fn listening_on(port: u16) -> Vec<String> {
    let mut addresses = Vec::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let text = std::fs::read_to_string(table).unwrap_or_default();
        for line in text.lines().skip(1) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let (Some(local), Some(state)) = (fields.get(1), fields.get(3)) else {
                continue;
            };
            let Some((address, hex_port)) = local.rsplit_once(':') else {
                continue;
            };
            // 0A: LISTEN.
            if *state == "0A" && u16::from_str_radix(hex_port, 16) == Ok(port) {
                addresses.push(address.to_owned());
            }
        }
    }
    addresses
}
