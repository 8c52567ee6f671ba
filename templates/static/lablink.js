// Keeps the count of free VMs on the start page, and a workshop's warning on the
// participant's pages, current without a reload. The pages work without this script; it
// only refreshes what they show.
(function () {
  "use strict";
  // Times as people write them, "Tue 8 Dec, 09:00 (Lisbon)": in a workshop's zone (its
  // offset from UTC in seconds and its name), else in the browser's own zone. The server
  // writes the same in the workshop's zone, or in UTC marked data-local for this to redo.
  var DAYS = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
  var MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
  function two(n) { return (n < 10 ? "0" : "") + n; }
  function place(zone) { return zone ? zone.split("/").pop().replace(/_/g, " ") : ""; }
  function humanTime(iso, offsetSecs, zone) {
    var at = new Date(iso);
    if (isNaN(at.getTime())) { return iso; }
    if (offsetSecs !== null && offsetSecs !== undefined && offsetSecs !== "") {
      var shifted = new Date(at.getTime() + Number(offsetSecs) * 1000);
      var mins = Math.abs(Number(offsetSecs)) / 60;
      var label = place(zone) || (Number(offsetSecs) === 0 ? "UTC" :
        "UTC" + (offsetSecs < 0 ? "-" : "+") + two(Math.floor(mins / 60)) + ":" + two(mins % 60));
      return DAYS[shifted.getUTCDay()] + " " + shifted.getUTCDate() + " " +
        MONTHS[shifted.getUTCMonth()] + ", " + two(shifted.getUTCHours()) + ":" +
        two(shifted.getUTCMinutes()) + " (" + label + ")";
    }
    var own = "";
    try { own = place(Intl.DateTimeFormat().resolvedOptions().timeZone); } catch (e) { own = ""; }
    return DAYS[at.getDay()] + " " + at.getDate() + " " + MONTHS[at.getMonth()] + ", " +
      two(at.getHours()) + ":" + two(at.getMinutes()) + (own ? " (" + own + ")" : "");
  }
  function localiseTimes(root) {
    Array.prototype.forEach.call(root.querySelectorAll("time[data-local]"), function (t) {
      t.textContent = humanTime(t.getAttribute("datetime"));
    });
  }
  window.lablinkLocaliseTimes = localiseTimes;
  localiseTimes(document);
  var status = document.getElementById("workshop_status");
  var workshop = status ? status.getAttribute("data-workshop") : null;
  var notice = document.getElementById("workshop_notice");
  var NOTICE_MS = 15000;
  function refreshNotice() {
    fetch("/api/workshops/" + encodeURIComponent(workshop) + "/notice",
          { headers: { "Accept": "application/json" } })
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (body) {
        if (body && notice) {
          notice.textContent = body.notice || "";
          notice.hidden = !body.notice;
        }
      })
      .catch(function () { /* keep what is shown; try again next time */ })
      .then(function () { setTimeout(refreshNotice, NOTICE_MS); });
  }
  // The participant's own page: the session's warnings and the workshop's, together.
  var warning = document.getElementById("session_warning");
  var sessionNotice = document.getElementById("session_notice");
  function refreshSession() {
    fetch("/api/session", { headers: { "Accept": "application/json" }, credentials: "same-origin" })
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (body) {
        if (!body) { return; }
        sessionNotice.textContent = body.session_notice || "";
        warning.hidden = !body.session_notice;
        if (notice) {
          notice.textContent = body.workshop_notice || "";
          notice.hidden = !body.workshop_notice;
        }
      })
      .catch(function () { /* keep what is shown; try again next time */ })
      .then(function () { setTimeout(refreshSession, NOTICE_MS); });
  }
  if (warning && sessionNotice) {
    setTimeout(refreshSession, NOTICE_MS);
  } else if (workshop && notice) {
    setTimeout(refreshNotice, NOTICE_MS);
  }

  // The participant's journey after the claim: each step as it happens, from the server's
  // event stream. Without this script the page reloads itself (see its <noscript>).
  var journey = document.getElementById("journey");
  if (journey && journey.getAttribute("data-live") && window.EventSource) {
    var showJourney = function (view) {
      view.steps.forEach(function (step) {
        var item = journey.querySelector('[data-step="' + step.step + '"]');
        if (!item) { return; }
        item.className = "journey-step" + (step.done ? " done" : "") + (step.waiting ? " waiting" : "");
        var time = item.querySelector(".journey-time");
        if (!time) { return; }
        time.textContent = step.at ?
          humanTime(step.at, journey.getAttribute("data-offset"), journey.getAttribute("data-zone")) :
          (step.waiting ? "in progress" + (step.usual_secs ? ", usually " + step.usual_secs + " s" : "") : "");
      });
      document.getElementById("journey_next").textContent = view.next;
      var slow = document.getElementById("journey_slow");
      slow.textContent = view.slow || "";
      slow.hidden = !view.slow;
      document.getElementById("journey_failure").textContent = view.failure || "";
      document.getElementById("journey_failed").hidden = view.step !== "failed";
    };
    var stream = new EventSource("/api/session/journey/events");
    stream.onmessage = function (e) {
      var view = JSON.parse(e.data);
      showJourney(view);
      if (view.step === "ended") { stream.close(); }
    };
    stream.addEventListener("gone", function () { stream.close(); location.href = "/session"; });
  }

  var count = document.getElementById("unassigned_vms_count");
  if (!count) { return; }
  var REFRESH_MS = 5000;
  var countUrl = "/api/unassigned_vms_count" +
    (workshop ? "?workshop=" + encodeURIComponent(workshop) : "");
  function refresh() {
    fetch(countUrl, { headers: { "Accept": "application/json" } })
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (body) {
        if (body && typeof body.count === "number") { count.textContent = String(body.count); }
      })
      .catch(function () { /* keep the last number; try again next time */ })
      .then(function () { setTimeout(refresh, REFRESH_MS); });
  }
  setTimeout(refresh, REFRESH_MS);
})();
