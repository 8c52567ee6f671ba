#!/bin/bash
# The browser desktop's X session: an XFCE desktop on TigerVNC's X server, on the display
# the agent watches (LABLINK_X_DISPLAY) and listening on the loopback only, at the port of
# LABLINK_VNC_ADDR. Nothing outside the VM can reach it; the agent relays it to the
# participant's browser over its own outbound connection to the allocator. It asks for a
# password too, from LABLINK_VNC_PASSWORD_FILE, so no other process on the VM gets in: the
# agent writes a new one there at start and at every assignment and logs in with it itself.
# LABLINK_DESKTOP_GEOMETRY (1920x1080) and LABLINK_DESKTOP_SESSION (startxfce4) choose the
# screen's size and the session started on it.
set -euo pipefail

password_file="${LABLINK_VNC_PASSWORD_FILE:-/home/client/.vnc/passwd}"
install -d -m 0700 "$(dirname "$password_file")"
# A random password until the agent sets the first one.
(umask 077 && head -c 8 /dev/urandom > "$password_file")

display="${LABLINK_X_DISPLAY:-:20}"
vnc_addr="${LABLINK_VNC_ADDR:-127.0.0.1:5901}"
port="${vnc_addr##*:}"
case "$vnc_addr" in
  127.*|\[::1\]*) ;;
  *) echo "vnc-desktop: LABLINK_VNC_ADDR must be a loopback address" >&2; exit 1 ;;
esac
geometry="${LABLINK_DESKTOP_GEOMETRY:-1920x1080}"
# The desktop session: a program and its arguments, split on spaces (never run by a shell).
read -r -a session <<< "${LABLINK_DESKTOP_SESSION:-startxfce4}"

# No X11 over TCP either: the VM opens no port at all.
Xvnc "$display" -localhost=1 -nolisten tcp -rfbport "$port" -SecurityTypes VncAuth \
  -rfbauth "$password_file" -AlwaysShared=1 \
  -geometry "$geometry" -depth 24 &
for _ in $(seq 1 50); do
  [ -S "/tmp/.X11-unix/X${display#:}" ] && break
  sleep 0.1
done
if command -v dbus-launch >/dev/null; then
  DISPLAY="$display" dbus-launch --exit-with-session "${session[@]}" &
else
  DISPLAY="$display" "${session[@]}" &
fi
