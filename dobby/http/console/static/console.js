// dobby console: follows the log without a reload. Every second the page is fetched again and each region
// marked data-live is swapped for its fresh copy when it changed. The server escapes all it renders, and
// markup parsed by DOMParser never runs scripts.
(function () {
  "use strict";
  var liveUrl = document.body.getAttribute("data-live-url");
  if (liveUrl && liveUrl !== window.location.pathname) {
    // after a posted action the address is the action's; reloading should show the page, not post again
    window.history.replaceState(null, "", liveUrl);
  }
  if (!document.querySelector("[data-live]")) {
    return;
  }
  var parser = new DOMParser();
  function refresh() {
    fetch(window.location.href, { headers: { "X-Dobby-Live": "1" }, credentials: "same-origin", cache: "no-store" })
      .then(function (answer) {
        var type = answer.headers.get("content-type") || "";
        if (!answer.ok || type.indexOf("text/html") !== 0) {
          return null;
        }
        return answer.text();
      })
      .then(function (text) {
        if (text === null) {
          return;
        }
        var fresh = parser.parseFromString(text, "text/html");
        document.querySelectorAll("[data-live]").forEach(function (region) {
          var next = fresh.getElementById(region.id);
          if (next && next.innerHTML !== region.innerHTML) {
            region.replaceWith(document.importNode(next, true));
          }
        });
      })
      .catch(function () {})
      .then(function () {
        window.setTimeout(refresh, 1000);
      });
  }
  window.setTimeout(refresh, 1000);
})();
