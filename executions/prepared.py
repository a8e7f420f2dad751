"""Read queries compiled by the ORM once per process, then run with new values.

Building a QuerySet and compiling it to SQL costs 1–3 ms of CPU for the
correlated-subquery reads of GetPipelineState (more than PostgreSQL takes to
answer them from their indexes, with 1,000,000 action executions). The read
paths that run on every page view and API call run the same few queries with
one value changed (the pipeline's id), so they compile each once:

    LATEST = Prepared(lambda pipeline_id: Stage.objects.filter(pipeline_id=pipeline_id)
                      .values_list("name", "position"))
    rows = LATEST(pipeline.pk)      # [("Source", 0), ...], as values_list gives them

``build`` receives one *marker* per argument (an integer no id can be) and
returns a ``values_list`` QuerySet of plain field lookups (no annotations or
``flat``). Its SQL and parameters are compiled on the first call for each
database; a call puts its arguments where the markers are in the parameters,
executes the SQL on the current thread's connection (so the query is counted
and logged like any other) and converts each row with the compiler's own
converters: the answer is what ``list(build(*args))`` would give. Only values
bound as single parameters can be arguments (an id, a name), not lists.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.db import connections
from django.db.models import QuerySet

# Markers stand for the arguments while the query is compiled: negative
# integers no primary key takes, within a 32-bit integer column's range (out of
# its range, the ORM would compile a lookup to "no rows").
_MARKER = -2_073_741_000


class Prepared:
    def __init__(self, build: Callable[..., QuerySet]):
        self.build = build
        self.nargs = build.__code__.co_argcount
        self._compiled: dict[tuple, tuple] = {}

    def _compile(self, using: str):
        markers = [_MARKER - i for i in range(self.nargs)]
        queryset = self.build(*markers)
        compiler = queryset.query.get_compiler(using=using)
        sql, params = compiler.as_sql()
        slots = []
        for index, value in enumerate(params):
            if value in markers:
                slots.append((index, markers.index(value)))
        if sorted({arg for _, arg in slots}) != list(range(self.nargs)):
            raise ValueError("every argument must appear in the query's parameters")
        return sql, tuple(params), slots, compiler

    def __call__(self, *args: Any, using: str = "default") -> list[tuple]:
        connection = connections[using]
        key = (using, connection.vendor, connection.settings_dict["NAME"])
        compiled = self._compiled.get(key)
        if compiled is None:
            compiled = self._compiled[key] = self._compile(using)
        sql, params, slots, compiler = compiled
        values = list(params)
        for index, arg in slots:
            values[index] = args[arg]
        with connection.cursor() as cursor:
            cursor.execute(sql, values)
            rows = cursor.fetchall()
        return list(compiler.results_iter(results=[rows], tuple_expected=True))
