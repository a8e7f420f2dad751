/* Pipeline page: refresh the stages an event is about, and the header for executions. */
(function () {
  "use strict";
  function allStages() {
    return Array.from(document.querySelectorAll("[id^='part-stage:']")).map(function (el) {
      return el.id.slice("part-".length);
    });
  }
  Conveyor.connect({
    onEvents: function (events) {
      var parts = new Set();
      events.forEach(function (ev) {
        if (ev.stageName) parts.add("stage:" + ev.stageName);
        if (ev.kind === "PipelineExecution" || ev.kind === "Inbound") {
          parts.add("header");
          // An execution's status decides the retry buttons of every stage it ran in.
          if (ev.kind === "PipelineExecution") allStages().forEach(function (p) { parts.add(p); });
        }
      });
      Conveyor.refresh(Array.from(parts));
    },
    onResync: function () { Conveyor.refresh(["header"].concat(allStages())); },
  });
})();
