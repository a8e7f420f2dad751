/* Conveyor live dashboard: the websocket client shared by every page.
 *
 * The page is complete without this script. With it, the page opens the
 * websocket named by #live-root[data-socket], resumes from data-seq (the last
 * event sequence the server rendered), and on every batch of events asks the
 * page's own URL for the affected server-rendered parts (?parts=a,b), then
 * swaps them in. On a dropped connection it reconnects with ?after=<last seq>
 * and receives everything that happened meanwhile. No framework, no bundler.
 */
(function () {
  "use strict";

  var root = document.getElementById("live-root");
  var indicator = document.getElementById("live-indicator");

  function setState(state, text) {
    if (!indicator) return;
    indicator.hidden = false;
    indicator.dataset.state = state;
    indicator.textContent = text;
  }

  /* Fetch parts of this page and replace them; one request in flight, the rest batched. */
  var wanted = new Set();
  var inFlight = false;
  var timer = null;

  function busy(el) {
    // Never pull a form out from under someone typing in it or with a dialog open.
    var active = document.activeElement;
    if (active && el.contains(active) && /^(INPUT|TEXTAREA|SELECT)$/.test(active.tagName)) return true;
    return !!el.querySelector("details[open]");
  }

  function refresh(parts) {
    parts.forEach(function (p) { wanted.add(p); });
    if (!timer) timer = setTimeout(flush, 40);
  }

  function flush() {
    timer = null;
    if (inFlight || wanted.size === 0) return;
    var parts = Array.from(wanted);
    wanted.clear();
    inFlight = true;
    var url = new URL(window.location.href);
    url.searchParams.set("parts", parts.join(","));
    fetch(url.toString(), { headers: { "Accept": "application/json" }, credentials: "same-origin" })
      .then(function (r) { if (!r.ok) throw new Error(r.status); return r.json(); })
      .then(function (data) {
        var deferred = [];
        Object.keys(data.parts).forEach(function (key) {
          var el = document.getElementById("part-" + key);
          if (!el) { document.dispatchEvent(new CustomEvent("conveyor:missing-part", { detail: key })); return; }
          if (busy(el)) { deferred.push(key); return; }
          var box = document.createElement("div");
          box.innerHTML = data.parts[key].trim();
          var fresh = box.firstElementChild;
          if (fresh) el.replaceWith(fresh);
        });
        document.dispatchEvent(new CustomEvent("conveyor:refreshed", { detail: Object.keys(data.parts) }));
        if (deferred.length) setTimeout(function () { refresh(deferred); }, 1000);
      })
      .catch(function () { parts.forEach(function (p) { wanted.add(p); }); setTimeout(flush, 1000); })
      .finally(function () { inFlight = false; if (wanted.size) timer = setTimeout(flush, 40); });
  }

  /* The websocket, reconnecting with the last sequence seen. */
  function connect(handlers) {
    if (!root || !root.dataset.socket || !("WebSocket" in window)) return null;
    var last = parseInt(root.dataset.seq || "0", 10) || 0;
    var delay = 500;
    var socket = null;
    var client = { send: function (obj) { if (socket && socket.readyState === 1) socket.send(JSON.stringify(obj)); },
                   get last() { return last; }, close: function () { closed = true; if (socket) socket.close(); } };
    var closed = false;

    function open() {
      var scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
      socket = new WebSocket(scheme + window.location.host + root.dataset.socket + "?after=" + last);
      socket.onopen = function () { delay = 500; };
      socket.onmessage = function (message) {
        var data = JSON.parse(message.data);
        if (data.type === "hello") {
          setState("live", "live");
          if (handlers.onOpen) handlers.onOpen(client);
        } else if (data.type === "events") {
          last = Math.max(last, data.last);
          root.dataset.seq = String(last);
          handlers.onEvents(data.events, client);
        } else if (data.type === "resync") {
          last = Math.max(last, data.last);
          root.dataset.seq = String(last);
          (handlers.onResync || function () { window.location.reload(); })(client);
        } else if (handlers.onMessage) {
          handlers.onMessage(data, client);
        }
      };
      socket.onclose = function (event) {
        if (closed) return;
        if (event.code === 4401 || event.code === 4403) { setState("offline", "offline"); return; }
        setState("reconnecting", "reconnecting…");
        setTimeout(open, delay);
        delay = Math.min(delay * 2, 5000);
      };
    }
    setState("connecting", "connecting…");
    open();
    return client;
  }

  /* Running durations tick once a second (the server rendered them at first paint). */
  function human(seconds) {
    if (seconds < 1) return Math.round(seconds * 1000) + " ms";
    if (seconds < 60) return (seconds < 10 ? seconds.toFixed(1) : Math.round(seconds)) + " s";
    var m = Math.floor(Math.round(seconds) / 60), s = Math.round(seconds) % 60;
    if (m < 60) return m + " min" + (s ? " " + s + " s" : "");
    return Math.floor(m / 60) + " h" + (m % 60 ? " " + (m % 60) + " min" : "");
  }
  setInterval(function () {
    var now = Date.now();
    document.querySelectorAll(".elapsed[data-start]").forEach(function (el) {
      var start = Date.parse(el.dataset.start);
      if (!isNaN(start)) el.textContent = human(Math.max(0, now - start) / 1000);
    });
  }, 1000);

  window.Conveyor = { root: root, connect: connect, refresh: refresh };
})();
