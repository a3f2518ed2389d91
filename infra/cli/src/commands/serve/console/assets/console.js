// Live updates for the console's pages: the server says over server-sent events when
// something changed; the page asks for its own table again (?fragment=1, same filters) and
// swaps it in. Without JavaScript every page still reads, and reloads show what is new.
(function () {
  var root = document.querySelector("[data-live]");
  if (!root || !window.EventSource) return;
  var kinds = root.getAttribute("data-live").split(" ");
  var pending = false;
  function refresh() {
    if (pending) return;
    pending = true;
    setTimeout(function () {
      pending = false;
      var url = new URL(window.location.href);
      url.searchParams.set("fragment", "1");
      fetch(url, { credentials: "same-origin" })
        .then(function (r) { return r.ok ? r.text() : null; })
        .then(function (html) {
          if (html === null) return;
          root.innerHTML = html;
          document.body.setAttribute("data-updated", String(Date.now()));
        });
    }, 100);
  }
  var source = new EventSource("/console/live");
  kinds.forEach(function (kind) { source.addEventListener(kind, refresh); });
  source.addEventListener("open", function () { document.body.setAttribute("data-live-open", "1"); });
})();
