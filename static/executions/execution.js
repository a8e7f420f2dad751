/* Execution page: every event moves the timeline; execution events the header; ended actions the artifacts. */
(function () {
  "use strict";
  Conveyor.connect({
    onEvents: function (events) {
      var parts = new Set(["timeline"]);
      events.forEach(function (ev) {
        if (ev.kind === "PipelineExecution" || ev.kind === "Inbound") parts.add("header");
        if (ev.kind === "ActionExecution" && ev.status === "Succeeded") parts.add("artifacts");
      });
      Conveyor.refresh(Array.from(parts));
    },
    onResync: function () { Conveyor.refresh(["header", "timeline", "artifacts"]); },
  });
})();
