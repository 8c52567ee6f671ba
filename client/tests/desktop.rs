//! The browser desktop end to end, below the browser: a real X display with a real VNC server
//! on the VM's loopback (x11vnc on Xvfb), the real agent dialling out its tunnel, and the
//! allocator relaying a participant's WebSocket to it. The RFB spoken here is the real
//! protocol: the test reads the root window's colour back through the relay.

#[path = "support/lab.rs"]
mod lab;
#[path = "support/vnc_desktop.rs"]
mod vnc_desktop;

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use lab::{Lab, PATIENCE};
use lablink_allocator::config::DesktopMode;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::header;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::WebSocketStream;
use vnc_desktop::{VncDesktop, HEIGHT, ROOT_RGB, WIDTH};

type Socket = WebSocketStream<TcpStream>;

async fn browser_lab(desktop: &VncDesktop) -> Lab {
    let addr = desktop.addr.to_string();
    Lab::start_with("desk", move |config| {
        config.desktop.mode = DesktopMode::Browser;
        config.provider.local.vnc_addr = Some(addr);
    })
    .await
}

/// Claims a VM with only an email, as a participant's browser does: the desktop cookie.
async fn claim(lab: &Lab, email: &str) -> String {
    claim_at(&lab.base, email).await
}

/// [`claim`] at the allocator at `base`.
async fn claim_at(base: &str, email: &str) -> String {
    let participant = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let answer = participant
        .post(format!("{base}/api/request_vm"))
        .form(&[("email", email)])
        .send()
        .await
        .expect("request");
    assert_eq!(answer.status(), 303, "{:?}", answer.text().await);
    assert_eq!(answer.headers()[header::LOCATION], "/desktop");
    desktop_cookie(&answer)
}

/// Opens the WebSocket at `path` as a browser would, with these cookies and this `Origin`;
/// the HTTP status when refused.
async fn connect_socket(
    lab: &Lab,
    path: &str,
    cookie: Option<&str>,
    origin: Option<&str>,
) -> Result<Socket, u16> {
    connect_socket_at(&lab.base, path, cookie, origin).await
}

/// [`connect_socket`] at the allocator at `base`.
async fn connect_socket_at(
    base: &str,
    path: &str,
    cookie: Option<&str>,
    origin: Option<&str>,
) -> Result<Socket, u16> {
    let host = base.trim_start_matches("http://").to_owned();
    let mut request = format!("ws://{host}{path}")
        .into_client_request()
        .expect("request");
    let headers = request.headers_mut();
    if let Some(cookie) = cookie {
        headers.insert(header::COOKIE, cookie.parse().expect("header"));
    }
    if let Some(origin) = origin {
        headers.insert(header::ORIGIN, origin.parse().expect("header"));
    }
    let tcp = TcpStream::connect(&host).await.expect("connect");
    match tokio_tungstenite::client_async(request, tcp).await {
        Ok((socket, _)) => Ok(socket),
        Err(WsError::Http(response)) => Err(response.status().as_u16()),
        Err(err) => panic!("handshake: {err}"),
    }
}

/// Opens `/desktop/websockify`; the HTTP status when refused.
async fn open_desktop(
    lab: &Lab,
    cookie: Option<&str>,
    origin: Option<&str>,
) -> Result<Socket, u16> {
    connect_socket(lab, "/desktop/websockify", cookie, origin).await
}

/// The desktop cookie an answer sets, as a `Cookie` header carries it.
fn desktop_cookie(answer: &reqwest::Response) -> String {
    answer
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("lablink_desktop="))
        .and_then(|v| v.split(';').next())
        .expect("the desktop cookie")
        .to_owned()
}

/// RFB over the desktop's WebSocket, from the client's side.
struct Rfb {
    socket: Socket,
    received: Vec<u8>,
}

impl Rfb {
    fn new(socket: Socket) -> Self {
        Rfb {
            socket,
            received: Vec::new(),
        }
    }

    /// Whether the stream ends (closed, dropped or failed) within [`PATIENCE`].
    async fn closed_in_time(&mut self) -> bool {
        let closed = tokio::time::timeout(PATIENCE, async {
            loop {
                match self.socket.next().await {
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                    Some(Ok(_)) => {}
                }
            }
        })
        .await;
        closed.is_ok()
    }

    async fn read(&mut self, count: usize) -> Vec<u8> {
        while self.received.len() < count {
            let message = tokio::time::timeout(PATIENCE, self.socket.next())
                .await
                .expect("the desktop answers in time");
            match message {
                Some(Ok(Message::Binary(bytes))) => self.received.extend_from_slice(&bytes),
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                other => panic!("the desktop's stream ended: {other:?}"),
            }
        }
        self.received.drain(..count).collect()
    }

    async fn send(&mut self, bytes: &[u8]) {
        self.socket
            .send(Message::binary(bytes.to_vec()))
            .await
            .expect("send");
    }

    /// Version, no security (x11vnc runs `-nopw` on the loopback), shared init: the size.
    async fn handshake(&mut self) -> (u16, u16) {
        let version = self.read(12).await;
        assert!(version.starts_with(b"RFB 003."), "{version:?}");
        self.send(b"RFB 003.008\n").await;
        let count = self.read(1).await[0] as usize;
        let types = self.read(count).await;
        assert!(types.contains(&1), "no 'None' security offered: {types:?}");
        self.send(&[1]).await;
        assert_eq!(self.read(4).await, [0, 0, 0, 0], "security result");
        self.send(&[1]).await;
        let init = self.read(24).await;
        let name_len = u32::from_be_bytes([init[20], init[21], init[22], init[23]]) as usize;
        self.read(name_len).await;
        (
            u16::from_be_bytes([init[0], init[1]]),
            u16::from_be_bytes([init[2], init[3]]),
        )
    }

    /// SetPixelFormat: 32 bpp, depth 24, little-endian, true colour, 8 bits a channel at
    /// shifts 16, 8, 0. SetEncodings: raw only.
    async fn ask_raw_true_colour(&mut self) {
        self.send(&[
            0, 0, 0, 0, 32, 24, 0, 1, 0, 255, 0, 255, 0, 255, 16, 8, 0, 0, 0, 0,
        ])
        .await;
        self.send(&[2, 0, 0, 1, 0, 0, 0, 0]).await;
    }

    /// The whole screen, raw (megabytes, far more than a stream's window): the share of its
    /// pixels that have the root window's colour.
    async fn whole_screen_share_of_root_colour(&mut self, width: u16, height: u16) -> f64 {
        self.ask_raw_true_colour().await;
        let mut request = vec![3, 0];
        for value in [0, 0, width, height] {
            request.extend_from_slice(&value.to_be_bytes());
        }
        self.send(&request).await;
        let (mut seen, mut root) = (0usize, 0usize);
        while seen < usize::from(width) * usize::from(height) {
            let kind = self.read(1).await[0];
            assert_eq!(kind, 0, "expected a framebuffer update, got {kind}");
            let header = self.read(3).await;
            for _ in 0..u16::from_be_bytes([header[1], header[2]]) {
                let rect = self.read(12).await;
                let (w, h) = (
                    u16::from_be_bytes([rect[4], rect[5]]),
                    u16::from_be_bytes([rect[6], rect[7]]),
                );
                let pixels = self.read(usize::from(w) * usize::from(h) * 4).await;
                seen += usize::from(w) * usize::from(h);
                root += pixels
                    .chunks_exact(4)
                    .filter(|p| [p[2], p[1], p[0]] == ROOT_RGB)
                    .count();
            }
        }
        root as f64 / seen as f64
    }

    /// The RGB of the pixel at (`x`, `y`), asked for raw in 32-bit true colour.
    async fn pixel(&mut self, x: u16, y: u16) -> [u8; 3] {
        self.ask_raw_true_colour().await;
        let mut request = vec![3, 0];
        for value in [x, y, 1, 1] {
            request.extend_from_slice(&value.to_be_bytes());
        }
        self.send(&request).await;
        loop {
            let kind = self.read(1).await[0];
            assert_eq!(
                kind, 0,
                "expected a framebuffer update, got message type {kind}"
            );
            let header = self.read(3).await;
            let rects = u16::from_be_bytes([header[1], header[2]]);
            let mut found = None;
            for _ in 0..rects {
                let rect = self.read(12).await;
                let field = |at: usize| u16::from_be_bytes([rect[at], rect[at + 1]]);
                let (rx, ry, w, h) = (field(0), field(2), field(4), field(6));
                let encoding = i32::from_be_bytes([rect[8], rect[9], rect[10], rect[11]]);
                assert_eq!(encoding, 0, "raw encoding");
                let pixels = self.read(usize::from(w) * usize::from(h) * 4).await;
                // The server may send more than was asked (the cursor's area, say): only the
                // rectangle holding the pixel counts.
                if (rx..rx + w).contains(&x) && (ry..ry + h).contains(&y) {
                    let at = (usize::from(y - ry) * usize::from(w) + usize::from(x - rx)) * 4;
                    found = Some([pixels[at + 2], pixels[at + 1], pixels[at]]);
                }
            }
            if let Some(rgb) = found {
                return rgb;
            }
        }
    }
}

#[actix_web::test]
async fn a_participant_reaches_the_vms_own_vnc_server_through_the_agents_tunnel() {
    let desktop = VncDesktop::start();
    let lab = browser_lab(&desktop).await;
    let vm = lab.create_ready_vms(1).await.remove(0);
    lab.until_logged(&vm.hostname, "desktop tunnel up", 1).await;
    let own_origin = lab.base.clone();

    // Nothing reaches the agent without the cookie of a live assignment, from this origin.
    assert_eq!(
        open_desktop(&lab, None, Some(&own_origin)).await.err(),
        Some(403)
    );
    let cookie = claim(&lab, "ada@example.org").await;
    assert_eq!(
        open_desktop(&lab, Some(&cookie), Some("http://evil.example"))
            .await
            .err(),
        Some(403),
        "a foreign origin is refused"
    );
    assert_eq!(
        open_desktop(&lab, Some(&cookie), None).await.err(),
        Some(403)
    );
    let forged = cookie.replace("desk-1:", "desk-2:");
    assert_eq!(
        open_desktop(&lab, Some(&forged), Some(&own_origin))
            .await
            .err(),
        Some(403),
        "an altered cookie is refused"
    );
    assert!(
        !lab.agent_log(&vm.hostname).contains("desktop stream open"),
        "no refused socket reached the agent"
    );

    // The real VNC server answers, and its pixels are the display's.
    let socket = open_desktop(&lab, Some(&cookie), Some(&own_origin))
        .await
        .expect("the desktop opens");
    let mut rfb = Rfb::new(socket);
    assert_eq!(rfb.handshake().await, (WIDTH, HEIGHT));
    assert_eq!(rfb.pixel(10, 10).await, ROOT_RGB);
    lab.until_logged(&vm.hostname, "desktop stream open", 1)
        .await;
    // Megabytes through a window of 32 KiB: the allocator grants it back as the browser's
    // connection takes the bytes.
    assert!(rfb.whole_screen_share_of_root_colour(WIDTH, HEIGHT).await > 0.99);

    // Release closes the stream at once, and the cookie opens nothing any more.
    lab.release(&vm.hostname).await;
    assert!(
        rfb.closed_in_time().await,
        "the stream outlived the release"
    );
    assert_eq!(
        open_desktop(&lab, Some(&cookie), Some(&own_origin))
            .await
            .err(),
        Some(403),
        "the ended assignment's cookie is refused"
    );
    tokio::time::sleep(Duration::from_millis(10)).await;
}

#[actix_web::test]
async fn a_browser_on_one_allocator_reaches_an_agent_whose_tunnel_another_allocator_holds() {
    let desktop = VncDesktop::start();
    let lab = browser_lab(&desktop).await;
    let vm = lab.create_ready_vms(1).await.remove(0);
    lab.until_logged(&vm.hostname, "desktop tunnel up", 1).await;
    // A second allocator of the deployment, started once the VM is up, so the agent's
    // tunnel and its stream dials stay with the first one.
    let (peer, _peer_dir) = lab
        .start_peer(|config| config.desktop.mode = DesktopMode::Browser)
        .await;

    // The participant's browser reaches only the second allocator.
    let cookie = claim_at(&peer, "grace@example.org").await;
    let state = desktop_state_at(&peer, &cookie).await;
    assert_eq!(
        state["state"], "ready",
        "the tunnel elsewhere counts: {state}"
    );
    assert_eq!(state["watched"], false, "{state}");
    let socket = connect_socket_at(&peer, "/desktop/websockify", Some(&cookie), Some(&peer))
        .await
        .expect("the desktop opens through the other allocator");
    let mut rfb = Rfb::new(socket);
    assert_eq!(rfb.handshake().await, (WIDTH, HEIGHT));
    assert_eq!(rfb.pixel(10, 10).await, ROOT_RGB);
    lab.until_logged(&vm.hostname, "desktop stream open", 1)
        .await;
    // The grants of the browser's allocator reach the agent across the hop.
    assert!(rfb.whole_screen_share_of_root_colour(WIDTH, HEIGHT).await > 0.99);

    // An instructor's view opened through the first allocator shows on the participant's
    // page, which asks the second, and ends there when the view closes.
    let assignment = assignment_of(&lab, &vm.hostname);
    let admin = admin_cookies(&lab).await;
    let path = format!(
        "/admin/vms/{}/desktop/websockify?assignment={assignment}",
        vm.hostname
    );
    let mut view = Rfb::new(open_socket(&lab, &path, &admin).await.expect("the view"));
    assert_eq!(view.handshake().await, (WIDTH, HEIGHT));
    let state = desktop_state_at(&peer, &cookie).await;
    assert_eq!(state["watched"], true, "{state}");
    drop(view);
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while desktop_state_at(&peer, &cookie).await["watched"] == true {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the view's end never showed"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // The calls between allocators need the deployment's proof.
    let internal = reqwest::Client::new();
    let asked = internal
        .post(lab.url(&format!("/api/internal/desktop/{}/streams", vm.hostname)))
        .header("x-lablink-peer", "0".repeat(64))
        .json(&serde_json::json!({"stream": "made-up"}))
        .send()
        .await
        .expect("ask");
    assert_eq!(asked.status(), 403, "an ask without the proof");
    let relayed = connect_socket_at(
        &peer,
        &format!("/api/internal/desktop/{}/streams/made-up", vm.hostname),
        None,
        None,
    )
    .await;
    assert_eq!(relayed.err(), Some(403), "a relay without the proof");

    // Release, made on the first allocator, closes the stream held by the second.
    lab.release(&vm.hostname).await;
    assert!(
        rfb.closed_in_time().await,
        "the relayed stream outlived the release"
    );
}

/// The VM's current assignment, as stored.
fn assignment_of(lab: &Lab, hostname: &str) -> i64 {
    let mut conn = lab.database.connect();
    lablink_schema::vms::Vm::find_by_hostname(&mut conn, hostname)
        .expect("read")
        .expect("vm")
        .assignment_seq
}

/// `GET /desktop/state` at the allocator at `base`, with the participant's cookie.
async fn desktop_state_at(base: &str, cookie: &str) -> serde_json::Value {
    reqwest::Client::new()
        .get(format!("{base}/desktop/state"))
        .header(header::COOKIE, cookie)
        .send()
        .await
        .expect("state")
        .json()
        .await
        .expect("json")
}

/// Signs in to the dashboard; the cookies a signed-in admin's browser holds.
async fn admin_cookies(lab: &Lab) -> String {
    let jar = std::sync::Arc::new(reqwest::cookie::Jar::default());
    let admin = reqwest::Client::builder()
        .cookie_provider(jar.clone())
        .build()
        .expect("client");
    let form = admin
        .get(lab.url("/admin/login"))
        .send()
        .await
        .expect("login page")
        .text()
        .await
        .expect("html");
    let marker = r#"name="login_nonce" value=""#;
    let start = form.find(marker).expect("nonce field") + marker.len();
    let nonce = &form[start..start + form[start..].find('"').expect("end")];
    let signed_in = admin
        .post(lab.url("/admin/login"))
        .form(&[
            ("user", "admin"),
            ("password", lab::ADMIN_PASSWORD),
            ("login_nonce", nonce),
        ])
        .send()
        .await
        .expect("sign in");
    assert!(signed_in.status().is_success(), "{}", signed_in.status());
    use reqwest::cookie::CookieStore;
    let url = lab.url("/admin").parse().expect("url");
    jar.cookies(&url)
        .expect("session cookie")
        .to_str()
        .expect("text")
        .to_owned()
}

/// Opens `path` as a WebSocket with these cookies, from the allocator's own origin.
async fn open_socket(lab: &Lab, path: &str, cookies: &str) -> Result<Socket, u16> {
    connect_socket(lab, path, Some(cookies), Some(&lab.base)).await
}

#[actix_web::test]
async fn an_instructors_view_drops_input_whatever_the_viewer_sends() {
    let mut desktop = VncDesktop::start();
    let lab = browser_lab(&desktop).await;
    let vm = lab.create_ready_vms(1).await.remove(0);
    lab.until_logged(&vm.hostname, "desktop tunnel up", 1).await;
    let participant = claim(&lab, "ada@example.org").await;
    let keys_log = lab.data_dir.path().join("xev.log");
    desktop.run_logged("xev", &["-geometry", "1024x768+0+0"], &keys_log);
    tokio::time::sleep(Duration::from_secs(1)).await;

    let assignment = assignment_of(&lab, &vm.hostname);
    let path = format!(
        "/admin/vms/{}/desktop/websockify?assignment={assignment}",
        vm.hostname
    );
    // Not signed in: the dashboard's sign-in answers, nothing is opened.
    assert_eq!(open_socket(&lab, &path, "").await.err(), Some(303));
    let admin = admin_cookies(&lab).await;
    let stale = path.replace(
        &format!("assignment={assignment}"),
        &format!("assignment={}", assignment - 1),
    );
    assert_eq!(
        open_socket(&lab, &stale, &admin).await.err(),
        Some(409),
        "a view of an earlier session"
    );

    let mut view = Rfb::new(
        open_socket(&lab, &path, &admin)
            .await
            .expect("the view opens"),
    );
    assert_eq!(view.handshake().await, (WIDTH, HEIGHT));
    // A viewer that ignores view-only: keys (x, then y) and a click.
    for keysym in [0x78u8, 0x79] {
        view.send(&[4, 1, 0, 0, 0, 0, 0, keysym]).await;
        view.send(&[4, 0, 0, 0, 0, 0, 0, keysym]).await;
    }
    view.send(&[5, 1, 0, 40, 0, 40]).await;
    // The view still works: the pixels come.
    view.pixel(10, 10).await;
    let state: serde_json::Value = reqwest::Client::new()
        .get(lab.url("/desktop/state"))
        .header(header::COOKIE, &participant)
        .send()
        .await
        .expect("state")
        .json()
        .await
        .expect("json");
    assert_eq!(state["watched"], true, "{state}");

    // The participant's own keys do arrive: the X client was listening all along.
    let mut own = Rfb::new(
        open_desktop(&lab, Some(&participant), Some(&lab.base))
            .await
            .expect("the participant's desktop"),
    );
    own.handshake().await;
    own.send(&[4, 1, 0, 0, 0, 0, 0, 0x61]).await;
    own.send(&[4, 0, 0, 0, 0, 0, 0, 0x61]).await;
    own.pixel(10, 10).await;
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while !std::fs::read_to_string(&keys_log)
        .unwrap_or_default()
        .contains(", a), same_screen")
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the participant's key never arrived"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let seen = std::fs::read_to_string(&keys_log).unwrap_or_default();
    assert!(
        !seen.contains(", x), same_screen"),
        "the view's key arrived"
    );
    assert!(
        !seen.contains(", y), same_screen"),
        "the view's key arrived"
    );
    assert!(!seen.contains("ButtonPress"), "the view's click arrived");

    let audited: Vec<(String, Option<String>)> = {
        use diesel::prelude::*;
        use lablink_schema::schema::audit_events;
        let mut conn = lab.database.connect();
        audit_events::table
            .filter(audit_events::action.eq("vm.desktop.peek"))
            .select((audit_events::actor, audit_events::detail))
            .load(&mut conn)
            .expect("audit")
    };
    assert_eq!(audited.len(), 1, "{audited:?}");
    assert!(
        audited[0]
            .1
            .as_deref()
            .is_some_and(|d| d.contains("ada@example.org")),
        "{audited:?}"
    );
}

/// The password a VNC password file holds (the inverse of what `vncpasswd -f` writes).
fn plain_password(file_bytes: &[u8]) -> String {
    use des::cipher::{BlockDecrypt, KeyInit};
    let cipher = des::Des::new(&[0xe8, 0x4a, 0xd6, 0x60, 0xc4, 0x72, 0x1a, 0xe0].into());
    let mut block: [u8; 8] = file_bytes.try_into().expect("8 bytes");
    cipher.decrypt_block((&mut block).into());
    String::from_utf8_lossy(&block).into_owned()
}

/// What a VNC server offers a client that connects to it directly: its security types.
async fn offered_security(addr: std::net::SocketAddr) -> Vec<u8> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut direct = TcpStream::connect(addr).await.expect("connect");
    let mut version = [0u8; 12];
    direct.read_exact(&mut version).await.expect("version");
    direct.write_all(b"RFB 003.008\n").await.expect("version");
    let count = direct.read_u8().await.expect("count");
    let mut types = vec![0u8; usize::from(count)];
    direct.read_exact(&mut types).await.expect("types");
    types
}

#[actix_web::test]
async fn a_vnc_server_with_a_password_gets_a_new_one_every_session_that_no_browser_sees() {
    let secrets = tempfile::tempdir().expect("dir");
    let password_file = secrets.path().join("vnc").join("passwd");
    // The client image's own desktop script starts the server.
    let desktop = VncDesktop::start_image_desktop(&password_file, secrets.path());
    let initial = std::fs::read(&password_file).expect("the script's first password");
    assert_eq!(initial.len(), 8, "an rfbauth file");
    let mode = |path: &std::path::Path| {
        std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(path).expect("meta").permissions(),
        ) & 0o777
    };
    assert_eq!(mode(&password_file), 0o600);
    assert_eq!(mode(password_file.parent().expect("dir")), 0o700);
    assert_eq!(
        offered_security(desktop.addr).await,
        [2],
        "the server itself asks every client for its password"
    );
    // The VM opens no port: the VNC server listens on the loopback only, and X on no TCP
    // port at all.
    let listening = vnc_desktop::listening_on(desktop.addr.port());
    assert!(listening.contains(&"0100007F".to_owned()), "{listening:?}");
    assert!(
        listening
            .iter()
            .all(|a| a == "0100007F" || a == "00000000000000000000000001000000"),
        "127.0.0.1 and ::1 only: {listening:?}"
    );
    let x_port = 6000 + desktop.display[1..].parse::<u16>().expect("display number");
    assert!(vnc_desktop::listening_on(x_port).is_empty(), "X11 on TCP");
    let (addr, file) = (desktop.addr.to_string(), password_file.clone());
    let lab = Lab::start_with("desk-pw", move |config| {
        config.desktop.mode = DesktopMode::Browser;
        config.provider.local.vnc_addr = Some(addr);
        config.provider.local.vnc_password_file = Some(file);
    })
    .await;
    let vm = lab.create_ready_vms(1).await.remove(0);
    lab.until_logged(&vm.hostname, "desktop tunnel up", 1).await;
    let at_start = std::fs::read(&password_file).expect("file");
    assert_ne!(
        at_start, initial,
        "the agent replaced the image's password at start"
    );

    let mut passwords = vec![at_start];
    for email in ["ada@example.org", "grace@example.org"] {
        let cookie = claim(&lab, email).await;
        lab.until_logged(&vm.hostname, "VNC password rotated", passwords.len())
            .await;
        let now = std::fs::read(&password_file).expect("file");
        assert!(!passwords.contains(&now), "a new password for {email}");
        passwords.push(now);
        // The browser is asked for nothing, and sees the server's pixels.
        let mut rfb = Rfb::new(
            open_desktop(&lab, Some(&cookie), Some(&lab.base))
                .await
                .expect("the desktop opens"),
        );
        assert_eq!(rfb.handshake().await, (WIDTH, HEIGHT));
        assert_eq!(rfb.pixel(10, 10).await, ROOT_RGB);
        let log = lab.agent_log(&vm.hostname);
        for password in &passwords {
            assert!(
                !log.contains(&plain_password(password)),
                "the agent logged a password"
            );
        }
        lab.release(&vm.hostname).await;
        lab.until("the VM is free again", |vms| vms.iter().all(lab::ready))
            .await;
    }
}

#[actix_web::test]
async fn an_admin_takes_a_free_vm_over_and_it_is_released_when_the_time_is_up() {
    let desktop = VncDesktop::start();
    let addr = desktop.addr.to_string();
    let lab = Lab::start_with("desk-take", move |config| {
        config.desktop.mode = DesktopMode::Browser;
        config.desktop.take_over_secs = 10;
        config.provider.local.vnc_addr = Some(addr);
    })
    .await;
    let vm = lab.create_ready_vms(1).await.remove(0);
    lab.until_logged(&vm.hostname, "desktop tunnel up", 1).await;
    let admin = admin_cookies(&lab).await;
    let dashboard = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let page = dashboard
        .get(lab.url("/admin"))
        .header(header::COOKIE, &admin)
        .send()
        .await
        .expect("dashboard")
        .text()
        .await
        .expect("html");
    assert!(
        page.contains(&format!("/admin/vms/{}/take-over", vm.hostname)),
        "a free VM offers the take-over"
    );
    let marker = r#"name="csrf_token" value=""#;
    let start = page.find(marker).expect("csrf field") + marker.len();
    let csrf = &page[start..start + page[start..].find('"').expect("end")];
    let take_over = |csrf: String| {
        let (dashboard, admin, url) = (
            dashboard.clone(),
            admin.clone(),
            lab.url(&format!("/admin/vms/{}/take-over", vm.hostname)),
        );
        async move {
            dashboard
                .post(url)
                .header(header::COOKIE, admin)
                .form(&[("csrf_token", csrf)])
                .send()
                .await
                .expect("take over")
        }
    };
    assert_eq!(
        take_over("forged".to_owned()).await.status(),
        403,
        "no take-over without the form's token"
    );
    let taken = take_over(csrf.to_owned()).await;
    assert_eq!(taken.status(), 303);
    assert_eq!(taken.headers()[header::LOCATION], "/desktop");
    let cookie = desktop_cookie(&taken);
    let held = lab
        .until("the VM is held", |vms| vms[0].user_email.is_some())
        .await;
    assert!(held[0].reserved_until.is_some());
    assert_eq!(
        take_over(csrf.to_owned()).await.status(),
        409,
        "a VM in use cannot be taken over"
    );
    let mut rfb = Rfb::new(
        open_desktop(&lab, Some(&cookie), Some(&lab.base))
            .await
            .expect("the admin's desktop"),
    );
    assert_eq!(rfb.handshake().await, (WIDTH, HEIGHT));
    assert_eq!(rfb.pixel(10, 10).await, ROOT_RGB);

    // Ten seconds later the VM's actor releases it, the desktop closes, the VM is free again.
    assert!(
        rfb.closed_in_time().await,
        "the take-over outlived its time"
    );
    lab.until("the VM is free again", |vms| {
        vms.iter().all(lab::ready) && vms[0].reserved_until.is_none()
    })
    .await;
    let audited: Vec<String> = {
        use diesel::prelude::*;
        use lablink_schema::schema::audit_events;
        let mut conn = lab.database.connect();
        audit_events::table
            .filter(audit_events::target.eq(&vm.hostname))
            .select(audit_events::action)
            .load(&mut conn)
            .expect("audit")
    };
    assert!(
        audited.iter().any(|a| a == "vm.desktop.take_over"),
        "{audited:?}"
    );
}
