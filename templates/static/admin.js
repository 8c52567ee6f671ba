// Reads a chosen roster file into its textarea, so a CSV export can be uploaded without
// leaving the page (the form posts text, as the API takes it).
(function () {
  "use strict";
  document.querySelectorAll("input[type=file][data-fills]").forEach(function (input) {
    input.addEventListener("change", function () {
      var target = document.getElementById(input.getAttribute("data-fills"));
      var file = input.files && input.files[0];
      if (!target || !file || !window.FileReader) { return; }
      var reader = new FileReader();
      reader.onload = function () { target.value = String(reader.result); };
      reader.readAsText(file);
    });
  });
})();

// Live updates for the admin pages, through server-sent events. Every page works without
// this script; it only saves reloading.
(function () {
  "use strict";
  if (!window.EventSource) { return; }

  var rows = document.getElementById("instance_rows");
  if (rows) {
    var summary = document.getElementById("instance_summary");
    var pending = null;
    // Refreshing the rows must not undo what the admin ticked.
    var ticked = function (element) {
      var values = [];
      element.querySelectorAll("input[type=checkbox]:checked").forEach(function (box) {
        values.push(box.value);
      });
      return values;
    };
    var replace = function (url, element) {
      if (!element) { return; }
      fetch(url, { credentials: "same-origin" })
        .then(function (r) { return r.ok ? r.text() : null; })
        .then(function (html) {
          if (html === null) { return; }
          var keep = ticked(element);
          element.innerHTML = html;
          element.querySelectorAll("input[type=checkbox]").forEach(function (box) {
            if (keep.indexOf(box.value) >= 0) { box.checked = true; }
          });
        })
        .catch(function () {});
    };
    var refresh = function () {
      pending = null;
      replace("/admin/instances/rows", rows);
      replace("/admin/instances/summary", summary);
    };
    new EventSource("/admin/events").addEventListener("vms", function () {
      if (!pending) { pending = setTimeout(refresh, 250); }
    });
  }

  // The instructor's view: the funnel and table are drawn again on the server whenever a
  // participant moves on.
  var participants = document.getElementById("participants");
  if (participants) {
    var base = "/admin/workshops/" + encodeURIComponent(participants.getAttribute("data-workshop")) + "/participants";
    var waiting = null;
    var redraw = function () {
      waiting = null;
      fetch(base + "/live", { credentials: "same-origin" })
        .then(function (r) { return r.ok ? r.text() : null; })
        .then(function (html) { if (html !== null) { participants.innerHTML = html; } })
        .catch(function () {});
    };
    new EventSource(base + "/events").addEventListener("participants", function () {
      if (!waiting) { waiting = setTimeout(redraw, 250); }
    });
  }

  var log = document.getElementById("log");
  if (log && log.dataset.live) {
    var url = "/admin/logs/" + encodeURIComponent(log.dataset.hostname) + "/stream?after=" + encodeURIComponent(log.dataset.after || "0");
    // Newest first: each new line goes on top.
    new EventSource(url).onmessage = function (e) {
      var line = document.createElement("span");
      line.className = "log-line";
      line.textContent = e.data + "\n";
      log.insertBefore(line, log.firstChild);
    };
  }

  var operations = document.getElementById("operations");
  if (operations) {
    new EventSource("/admin/operations/events").onmessage = function (e) {
      var event = JSON.parse(e.data);
      var output = document.getElementById("op-" + event.operation_id + "-output");
      var state = document.getElementById("op-" + event.operation_id + "-state");
      if (!output) { if (event.event === "queued") { location.reload(); } return; }
      if (event.event === "line") { output.appendChild(document.createTextNode(event.message + "\n")); }
      var show = function (text) { state.textContent = text; state.className = "status status-" + text; };
      if (event.event === "started" && state) { show("running"); }
      if (event.event === "finished" && state) { show(event.state); }
    };
  }
})();
