/* Execution history: a new execution or a status change refreshes the current page of the table. */
(function () {
  "use strict";
  Conveyor.connect({
    onEvents: function (events) {
      if (events.some(function (ev) { return ev.kind === "PipelineExecution" || ev.kind === "Inbound"; })) {
        Conveyor.refresh(["table"]);
      }
    },
    onResync: function () { Conveyor.refresh(["table"]); },
  });
})();
