/* Pipelines page: any event refreshes the table (statuses and stage squares). */
(function () {
  "use strict";
  Conveyor.connect({
    onEvents: function () { Conveyor.refresh(["table"]); },
    onResync: function () { Conveyor.refresh(["table"]); },
  });
})();
