"""Reading an action's log through the API, while it runs and after it ended.

"While it runs" is shown two ways, both through the real worker: a probe
runner (registered for these tests only, through the real registry) that
reads the log through the API from inside its own ``run`` — the action is
then InProgress, claimed, with part of its log written — and a Simulate
action that waits to be completed from outside.
"""

from datetime import timedelta

import pytest
from django.utils import timezone

import runners
from executions import services
from executions.api.logs import whole_characters
from executions.models import ActionExecution
from pipelines import providers
from runners.base import Result, Runner
from tests.executions.conftest import sim, simple_pipeline
from tests.executions.test_api import post
from tests.factories import action


class ProbeRunner(Runner):
    """Writes its log in two halves and calls ``ProbeRunner.during(ctx)`` between them."""

    provider = "Probe"
    categories = ("Build",)
    description = "Test probe: runs a callback half-way through its log."
    runs_processes = False
    during = None

    def run(self, ctx):
        ctx.log.line("first half")
        ctx.log.write("größer ✓\n")
        type(self).during(ctx)
        ctx.log.line("second half")
        return Result(summary="probed")


@pytest.fixture
def probe():
    runners.register(ProbeRunner)
    yield ProbeRunner
    runners._registry.pop(("Build", "Probe"), None)
    providers._registry.pop(("Build", "Probe"), None)
    ProbeRunner.during = None


def log_url(ae, **query):
    suffix = "&".join(f"{k}={v}" for k, v in query.items())
    return f"/api/action-executions/{ae.action_execution_id}/log/" + (f"?{suffix}" if suffix
                                                                       else "")


def lines(text):
    """The log's lines without their timestamps."""
    return [line.split(" ", 1)[1] for line in text.splitlines()]


def test_the_log_is_readable_while_the_action_runs_and_resumes_from_next_offset(
        driver, api, viewer, operator, probe):
    simple_pipeline(stages=[("Build", [action("Compile", "Build", "Probe")])])
    seen = {}

    def during(ctx):
        ae = ActionExecution.objects.get(action_name="Compile")
        seen["status"] = ae.status
        seen["first"] = api(viewer).get(log_url(ae)).json()

    probe.during = during
    post(driver, api(operator), "/api/pipelines/demo/executions/")
    driver.run()

    first = seen["first"]
    assert seen["status"] == "InProgress"
    assert first["status"] == "InProgress" and first["complete"] is False
    assert first["offset"] == 0
    assert lines(first["text"])[-2:] == ["first half", "größer ✓"]
    # Offsets count the stored log's bytes; the text adds a timestamp to each line.
    assert first["nextOffset"] == first["size"] < len(first["text"].encode())

    ae = ActionExecution.objects.get(action_name="Compile")
    rest = api(viewer).get(log_url(ae, offset=first["nextOffset"])).json()
    assert rest["offset"] == first["nextOffset"]
    assert lines(rest["text"])[0] == "second half"
    assert rest["status"] == "Succeeded" and rest["complete"] is True
    assert rest["nextOffset"] == rest["size"]
    # Asking again from the end answers nothing more.
    end = api(viewer).get(log_url(ae, offset=rest["nextOffset"])).json()
    assert (end["text"], end["complete"], end["nextOffset"]) == ("", True, rest["nextOffset"])


def test_a_waiting_action_s_log_is_readable_and_complete_once_it_ends(driver, api, viewer,
                                                                     operator):
    simple_pipeline(stages=[("Build", [sim("Compile", Outcome="Waiting")])])
    post(driver, api(operator), "/api/pipelines/demo/executions/")
    driver.run()
    ae = ActionExecution.objects.get(action_name="Compile")
    body = api(viewer).get(log_url(ae)).json()
    assert body["status"] == "InProgress" and body["complete"] is False
    assert lines(body["text"]) == ["Simulating Build action Compile: Waiting after 0 s",
                                   "Waiting: Waiting (simulated)"]
    driver.call(services.action_complete, action_execution=ae, succeeded=True,
                summary="done")
    done = api(viewer).get(log_url(ae)).json()
    assert done["status"] == "Succeeded" and done["complete"] is True
    assert done["text"] == body["text"]


def test_an_abandoned_action_s_log_is_complete_only_once_its_worker_had_time_to_finish(
        driver, api, viewer, operator):
    simple_pipeline(stages=[("Build", [sim("Compile", Outcome="Waiting")])])
    post(driver, api(operator), "/api/pipelines/demo/executions/")
    driver.run()
    ae = ActionExecution.objects.get(action_name="Compile")
    ex = ae.execution
    post(driver, api(operator), f"/api/executions/{ex.execution_id}/stop/", {"abandon": True})
    assert api(viewer).get(log_url(ae)).json()["complete"] is False
    # A few seconds later (the settle time has passed), nothing more will come.
    ActionExecution.objects.filter(pk=ae.pk).update(
        ended_at=timezone.now() - timedelta(seconds=10))
    body = api(viewer).get(log_url(ae)).json()
    assert (body["status"], body["complete"]) == ("Abandoned", True)


def test_an_action_a_worker_has_not_started_has_an_empty_log(driver, api, viewer, operator):
    simple_pipeline()
    post(driver, api(operator), "/api/pipelines/demo/executions/")
    ae = ActionExecution.objects.get()
    body = api(viewer).get(log_url(ae)).json()
    assert body == {"actionExecutionId": str(ae.action_execution_id), "status": "InProgress",
                    "offset": 0, "nextOffset": 0, "size": 0, "text": "", "complete": False}


def test_a_bad_offset_or_limit_answers_400_and_an_unknown_action_404(driver, api, viewer,
                                                                    operator):
    simple_pipeline()
    post(driver, api(operator), "/api/pipelines/demo/executions/")
    driver.run()
    ae = ActionExecution.objects.get(action_name="Compile")
    size = api(viewer).get(log_url(ae)).json()["size"]
    beyond = api(viewer).get(log_url(ae, offset=size + 1))
    assert beyond.status_code == 400
    assert beyond.json()["errors"] == [
        {"path": "offset", "message": f"is beyond the end of the log ({size} bytes)"}]
    assert api(viewer).get(log_url(ae, offset="x")).status_code == 400
    assert api(viewer).get(log_url(ae, offset=-1)).status_code == 400
    assert api(viewer).get(log_url(ae, limit="many")).status_code == 400
    unknown = api(viewer).get("/api/action-executions/nope/log/")
    assert unknown.status_code == 404
    assert unknown.json() == {"detail": 'No action execution has the id "nope".'}


def test_a_line_longer_than_the_limit_comes_in_pieces_cut_between_characters(
        driver, api, viewer, operator, probe):
    simple_pipeline(stages=[("Build", [action("Compile", "Build", "Probe")])])
    probe.during = lambda ctx: ctx.log.write("x" * 2000 + "✓✓✓\n")
    post(driver, api(operator), "/api/pipelines/demo/executions/")
    driver.run()
    ae = ActionExecution.objects.get(action_name="Compile")
    whole = api(viewer).get(log_url(ae)).json()["text"]
    # The lines before the long one: whole lines only, the long one left for later.
    before = api(viewer).get(log_url(ae, limit=1024)).json()
    assert lines(before["text"])[-1] == "größer ✓"
    start = before["nextOffset"]
    # A limit that ends inside the first "✓" (3 bytes in UTF-8): a piece of the line,
    # with the line's timestamp, and the character left for the next answer.
    piece = api(viewer).get(log_url(ae, offset=start, limit=2001)).json()
    assert piece["nextOffset"] == start + 2000
    assert lines(piece["text"]) == ["x" * 2000] and not piece["text"].endswith("\ufffd")
    rest = api(viewer).get(log_url(ae, offset=piece["nextOffset"])).json()
    assert rest["text"].startswith("✓✓✓\n")   # the rest of the line: no second timestamp
    assert before["text"] + piece["text"] + rest["text"] == whole


@pytest.mark.parametrize(("data", "kept"), [
    (b"", 0),
    (b"abc", 3),
    ("é".encode(), 2),
    ("é".encode()[:1], 0),
    (b"ab" + "✓".encode()[:2], 2),
    (b"ab" + "✓".encode(), 5),
    (b"a" + "😀".encode()[:3], 1),
    (b"a" + "😀".encode(), 5),
])
def test_whole_characters_drops_only_a_cut_utf8_sequence_at_the_end(data, kept):
    assert whole_characters(data) == kept
