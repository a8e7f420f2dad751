"""The pipeline view stays readable as pipelines grow: stages wrap onto more rows
(as CodePipeline's console stacks them) instead of running off to the right, and
action names never break inside a word. Screenshots land in tests/screenshots/."""

from __future__ import annotations

import pytest

from executions.management.commands.load_demo import definition as demo_definition
from pipelines.services import pipeline_save
from tests.dashboard.e2e.conftest import shot
from tests.executions.conftest import sim
from tests.factories import definition

pytestmark = pytest.mark.e2e


def assert_no_horizontal_scrolling(page, width: int) -> None:
    overflow = page.evaluate("document.documentElement.scrollWidth - "
                             "document.documentElement.clientWidth")
    assert overflow <= 0, f"the page scrolls {overflow} px sideways"
    for right in page.eval_on_selector_all(
            "section.stage", "els => els.map(e => e.getBoundingClientRect().right)"):
        assert right <= width, f"a stage ends at {right} px, beyond the {width} px window"


def action_name(name: str) -> str:
    """The selector of an action card's name (":text-is" would miss it: the name's text is
    split by the <wbr> of the word_breaks filter)."""
    return f"section.stage .action header > :first-child:text-matches('^{name}$')"


def lines_of(page, selector: str) -> int:
    """How many lines the text of ``selector`` takes (its text's line boxes)."""
    return page.eval_on_selector(selector, """el => {
        const r = document.createRange(); r.selectNodeContents(el);
        return new Set([...r.getClientRects()].map(x => Math.round(x.top))).size; }""")


@pytest.fixture
def demo_in_a_window(page, conveyor, login, unique, tmp_path):
    """``demo_in_a_window(width)``: the demo pipeline (five stages) on a page that wide."""

    def show(width: int):
        doc = demo_definition(tmp_path, approval_provider="Manual")
        doc["name"] = unique
        pipeline_save(document=doc)
        page.set_viewport_size({"width": width, "height": 900})
        login("oscar")
        page.goto(f"{conveyor.url}/pipelines/{unique}/")

    return show


def test_the_five_stage_demo_fits_a_1400_pixel_window(page, demo_in_a_window):
    demo_in_a_window(1400)
    assert page.locator("section.stage").count() == 5
    assert_no_horizontal_scrolling(page, 1400)
    assert lines_of(page, action_name("PromoteToProduction")) == 1, \
        "PromoteToProduction breaks although its card is wide enough"
    shot(page, "layout-demo-1400")


def test_the_demos_action_names_stay_inside_their_cards_in_a_1280_pixel_window(
        page, demo_in_a_window):
    """At 1280 px the Approval stage's card is narrower than "PromoteToProduction": the
    name breaks between its words (PromoteTo|Production) instead of running past the card."""
    demo_in_a_window(1280)
    assert_no_horizontal_scrolling(page, 1280)
    overflows = page.eval_on_selector_all("section.stage .action", """cards => cards.map(c => {
        const name = c.querySelector("header > :first-child");
        return [name.textContent, name.getBoundingClientRect().right
                                  - c.getBoundingClientRect().right]; })""")
    for name, beyond in overflows:
        assert beyond <= 0, f"{name} runs {beyond:.0f} px past its card"
    # PromoteTo / Production, never inside a word.
    assert lines_of(page, action_name("PromoteToProduction")) == 2
    shot(page, "layout-demo-1280")


def _rule(name: str, provider: str) -> dict:
    rule = {"name": name, "ruleTypeId": {"category": "Rule", "owner": "AWS",
                                         "provider": provider, "version": "1"}}
    if provider == "VariableCheck":
        rule["configuration"] = {"Variable": "#{variables.Ring}", "Value": "production",
                                 "Operator": "EQ"}
    elif provider == "DeploymentWindow":
        rule["configuration"] = {"Cron": "0 * 9-17 ? * MON-FRI *", "TimeZone": "UTC"}
    else:
        rule["commands"] = ["true"]
    return rule


def test_ten_stages_with_gates_read_without_horizontal_scrolling_at_1366(page, conveyor,
                                                                        login, unique):
    """Every later stage has a gate before it (beforeEntry, two rules) and after it
    (onSuccess with a rule, or onFailure RETRY/ROLLBACK): 27 gates, no sideways scroll,
    no action or rule name broken inside a word."""
    stages = [("Source", [sim("Checkout", "Source", outputArtifacts=[{"name": "Src"}])])]
    stages += [(f"Stage{n}", [sim(f"DeployToRegion{n}", "Deploy"),
                              sim(f"VerifyRegion{n}Health", "Test", runOrder=2)])
               for n in range(1, 10)]
    doc = definition(unique, stages=stages)
    doc["variables"] = [{"name": "Ring", "defaultValue": "production"}]
    for n, stage in enumerate(doc["stages"][1:], 1):
        stage["beforeEntry"] = {"conditions": [{"result": "FAIL", "rules": [
            _rule(f"BusinessHoursInRegion{n}", "DeploymentWindow"),
            _rule("ReleaseRingIsProduction", "VariableCheck")]}]}
        stage["onSuccess"] = {"conditions": [{"result": "ROLLBACK", "rules": [
            _rule(f"NoFiringAlertsInRegion{n}", "Commands")]}]}
        stage["onFailure"] = {"result": "ROLLBACK"} if n % 2 else {
            "result": "RETRY", "retryConfiguration": {"retryMode": "ALL_ACTIONS"}}
    pipeline_save(document=doc)
    page.set_viewport_size({"width": 1366, "height": 768})
    login("oscar")
    page.goto(f"{conveyor.url}/pipelines/{unique}/")
    assert page.locator("section.stage").count() == 10
    assert page.locator("section.gate[data-kind=beforeEntry]").count() == 9
    assert page.locator("section.gate[data-kind=onSuccess]").count() == 9
    assert page.locator("section.gate[data-kind=onFailure]").count() == 9
    assert_no_horizontal_scrolling(page, 1366)
    for right in page.eval_on_selector_all(
            "section.gate", "els => els.map(e => e.getBoundingClientRect().right)"):
        assert right <= 1366, f"a gate ends at {right} px, beyond the 1366 px window"
    # Stages wrap onto rows: more than one row, and none of them overflows.
    tops = set(page.eval_on_selector_all(
        "section.stage", "els => els.map(e => Math.round(e.getBoundingClientRect().top))"))
    assert len(tops) > 1
    for n in range(1, 10):
        assert lines_of(page, action_name(f"VerifyRegion{n}Health")) == 1
        assert lines_of(page, f"section.gate .rule-name:text-is('BusinessHoursInRegion{n}')") == 1
        assert lines_of(page, f"section.gate .rule-name:text-is('NoFiringAlertsInRegion{n}')") == 1
    # A gate sits in its stage's column: beforeEntry just above the stage, onSuccess below.
    geometry = page.eval_on_selector("[id='part-stage:Stage5']", """el => {
        const box = s => el.querySelector(s).getBoundingClientRect();
        return [box("section.gate[data-kind=beforeEntry]").bottom, box("section.stage").top,
                box("section.stage").bottom, box("section.gate[data-kind=onSuccess]").top]; }""")
    before_bottom, stage_top, stage_bottom, after_top = geometry
    assert before_bottom <= stage_top and stage_bottom <= after_top
    shot(page, "layout-ten-stages-1366")
