// The browser desktop: noVNC's RFB client, served by this allocator, on /desktop/websockify.
// When the connection drops the page asks /desktop/state why, says so, and connects again
// for as long as the session lasts. `data-desktop` on <body> tells tests (and styles) where
// it stands: connecting, connected, waiting, ended; `data-connections` counts the connections
// made, reconnections included.
import RFB from "/desktop/novnc/core/rfb.js";

const screen = document.getElementById("desktop_screen");
const statusLine = document.getElementById("desktop_status");
const clipboardDialog = document.getElementById("clipboard_dialog");
const clipboardText = document.getElementById("clipboard_text");
const RETRY_MS = 3000;
let rfb = null;
let connections = 0;

function show(stage, text, problem) {
  document.body.dataset.desktop = stage;
  statusLine.textContent = text;
  statusLine.classList.toggle("problem", Boolean(problem));
}

// An instructor's peek is view-only (the allocator drops its input as well) and has no
// session of its own to ask about.
const viewOnly = screen.dataset.viewOnly === "true";
const watchedNote = document.getElementById("desktop_watched");
const WATCH_POLL_MS = 5000;

function socketUrl() {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${location.host}${screen.dataset.socket}`;
}

async function sessionState() {
  if (viewOnly) {
    return { state: "ready", message: "The view dropped; connecting again…" };
  }
  try {
    const answer = await fetch("/desktop/state", { cache: "no-store" });
    return await answer.json();
  } catch (_) {
    return { state: "waiting", message: "The allocator cannot be reached just now; trying again…" };
  }
}

function connect() {
  show("connecting", "Connecting to your desktop…", false);
  rfb = new RFB(screen, socketUrl(), { shared: true });
  rfb.scaleViewport = true;
  rfb.viewOnly = viewOnly;
  rfb.addEventListener("connect", () => {
    connections += 1;
    document.body.dataset.connections = String(connections);
    show("connected", "Connected: this is your lab VM's desktop.", false);
    rfb.focus();
  });
  rfb.addEventListener("disconnect", async () => {
    rfb = null;
    const answer = await sessionState();
    if (answer.state === "ended") {
      show("ended", answer.message, true);
      document.getElementById("desktop_back").hidden = false;
      return;
    }
    show("waiting", answer.message, true);
    setTimeout(connect, RETRY_MS);
  });
  rfb.addEventListener("clipboard", (event) => {
    clipboardText.value = event.detail.text;
  });
  rfb.addEventListener("credentialsrequired", () => {
    show("waiting", "The VM's desktop asks for a password; please ask your instructor.", true);
  });
}

// The participant sees when an instructor is viewing.
async function showWatched() {
  if (!watchedNote || document.body.dataset.desktop === "ended") {
    return;
  }
  const answer = await sessionState();
  watchedNote.hidden = answer.watched !== true;
  if (answer.state === "ended" && rfb) {
    rfb.disconnect();
  }
}
if (watchedNote) {
  setInterval(showWatched, WATCH_POLL_MS);
}

document.getElementById("desktop_fullscreen").addEventListener("click", () => {
  if (document.fullscreenElement) {
    document.exitFullscreen();
  } else {
    document.documentElement.requestFullscreen();
  }
});
if (!viewOnly) {
  document.getElementById("desktop_clipboard").addEventListener("click", () => {
    clipboardDialog.showModal();
  });
  document.getElementById("clipboard_send").addEventListener("click", () => {
    if (rfb) {
      rfb.clipboardPasteFrom(clipboardText.value);
    }
    clipboardDialog.close();
  });
}

connect();
