/* Action page: the log streams in while the action runs; auto-scroll stops when the
 * reader scrolls up (and resumes when they come back to the bottom). */
(function () {
  "use strict";
  var root = Conveyor.root;
  var log = document.getElementById("log");
  var follow = document.getElementById("log-follow");
  var state = document.getElementById("log-state");
  if (!root || !log) return;
  var offset = parseInt(log.dataset.offset || "0", 10) || 0;
  var ended = log.dataset.ended === "true";

  function atBottom() { return log.scrollHeight - log.scrollTop - log.clientHeight < 24; }
  function scrollDown() { if (follow.checked) log.scrollTop = log.scrollHeight; }
  log.addEventListener("scroll", function () { follow.checked = atBottom(); });
  follow.addEventListener("change", scrollDown);
  scrollDown();

  function subscribe(client) {
    if (!ended || log.dataset.subscribed !== "done") client.send({ log: root.dataset.action, offset: offset });
  }
  Conveyor.connect({
    onOpen: subscribe,
    onEvents: function (events) {
      var mine = events.filter(function (ev) {
        return ev.stageName === root.dataset.stage && ev.actionName === root.dataset.actionName;
      });
      if (mine.length) Conveyor.refresh(["header"]);
    },
    onResync: function () { Conveyor.refresh(["header"]); },
    onMessage: function (data) {
      if (data.type !== "log" || data.action !== root.dataset.action) return;
      if (data.text) {
        var stick = follow.checked;
        log.appendChild(document.createTextNode(data.text));
        offset = data.offset;
        log.dataset.offset = String(offset);
        if (stick) log.scrollTop = log.scrollHeight;
      }
      if (data.ended) { ended = true; log.dataset.subscribed = "done"; log.dataset.ended = "true"; if (state) state.textContent = "complete"; }
      else if (state && !ended) state.textContent = "streaming live";
    },
  });
})();
