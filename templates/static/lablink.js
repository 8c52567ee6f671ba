// Keeps the count of free VMs on the start page current without a reload. The page works
// without this script; it only refreshes the number.
(function () {
  "use strict";
  var count = document.getElementById("unassigned_vms_count");
  if (!count) { return; }
  var REFRESH_MS = 5000;
  function refresh() {
    fetch("/api/unassigned_vms_count", { headers: { "Accept": "application/json" } })
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (body) {
        if (body && typeof body.count === "number") { count.textContent = String(body.count); }
      })
      .catch(function () { /* keep the last number; try again next time */ })
      .then(function () { setTimeout(refresh, REFRESH_MS); });
  }
  setTimeout(refresh, REFRESH_MS);
})();
