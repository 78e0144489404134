"""The model page (``/ui/models/{name}`` and ``GET /api/models/{name}``): versions with stages,
approvals and gates; the alias timeline overlaid on the monitoring plot; traffic; the
criterion against the live metric; open alerts; actions only for scientists and above."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

import pytest
from ui_support import add_users, browser, log_in, running_ui

from gates_off import NO_GATES
from overview_data import performance_rows, raise_alert, register_churn, save_window, shifted
from shipyard import Client
from shipyard.config import ProjectConfig
from shipyard.registry import Gates, Registry, Traffic
from shipyard.store import Store

pytestmark = pytest.mark.sqlite_only  # the database is incidental here (conftest)

PROJECT = ProjectConfig.model_validate(
    {"gates": {"require": False}, "models": {"churn": {"accept": "accuracy >= 0.6"}}}
)


class ChurnUi(NamedTuple):
    url: str
    alert: str


@pytest.fixture
def churn(client_for: Callable[[str], Client], store: Store) -> Iterator[ChurnUi]:
    """churn v1 (production after a rollback), v2 (a 10% canary), v3 (failed its gates), with
    monitoring, an open alert and users of every role; yields the UI's URL."""
    add_users(store)
    sam = client_for("sam")
    for _ in range(3):
        register_churn(sam, "churn", description="churn model")
    registry, traffic = Registry(store, NO_GATES), Traffic(store, NO_GATES)
    registry.set_objective("churn", actor="sam", objective="Keep customers", accept="f1 >= 0.9")
    registry.set_details("churn", actor="admin", team="retention", owner="olga")
    registry.approve("churn", 1, actor="april", reason="fine <script>x</script>")
    registry.approve("churn", 2, actor="april", reason="better recall")
    registry.promote("churn", 1, actor="sam", reason="first")
    registry.promote("churn", 2, actor="sam", reason="try v2")
    registry.rollback("churn", actor="sam", reason="v2 <b>worse</b>")
    traffic.canary("churn", 2, 10, actor="sam", reason="again, carefully")
    digest = registry.get_version("churn", 3).digest
    Gates(store).record(
        "churn",
        3,
        digest=digest,
        passed=False,
        failed=["fairness:sex"],
        champion=1,
        data_source="eval set",
        report={},
        actor="sam",
    )
    now = datetime.now(UTC)
    for hours in (30, 20, 10):
        end = now - timedelta(hours=hours)
        save_window(sam, "churn", shifted(hours), end=end, extra=performance_rows(0.7))
    alert = raise_alert(store, "churn", rule="acc", message="accuracy <em>fell</em>")
    with running_ui(store, project=PROJECT) as url:
        yield ChurnUi(url, alert)


def test_the_model_page_as_json(churn: ChurnUi) -> None:
    with browser(churn.url) as client:
        log_in(client, "vera")
        page = client.get("/api/models/churn").json()
    facts = (page["team"], page["owner"], page["objective"])
    assert facts == ("retention", "olga", "Keep customers")
    assert page["criterion"] == "accuracy >= 0.6"  # shipyard.toml over the recorded f1 >= 0.9
    live = page["live"]
    assert live["status"] == "met" and 0.6 < live["value"] < 0.8
    assert live["lower"] < live["value"] < live["upper"]
    versions = {v["version"]: v for v in page["versions"]}
    assert versions[1]["stage"] == "production" and versions[1]["aliases"] == ["production"]
    assert versions[2]["stage"] == "archived"  # was production once; now a canary
    assert versions[1]["approvals"][0]["approver"] == "april"
    assert versions[1]["approvals"][0]["reason"] == "fine <script>x</script>"
    assert versions[3]["gate"]["status"] == "failed"
    assert versions[3]["gate"]["failed"] == ["fairness:sex"]
    assert versions[1]["gate"]["status"] == "not validated"
    timeline = [(e["action"], e["version"], e["by"], e["reason"]) for e in page["timeline"]]
    assert timeline == [
        ("rollback", 1, "sam", "v2 <b>worse</b>"),
        ("set", 2, "sam", "try v2"),
        ("set", 1, "sam", "first"),
    ]
    assert [s["version"] for s in page["production_steps"]] == [1, 2, 1]
    assert page["traffic"]["kind"] == "canary" and "v2 10%" in page["traffic"]["summary"]
    assert page["traffic"]["reason"] == "again, carefully"
    assert [a["id"] for a in page["alerts"]] == [churn.alert] and page["health"]["open_alerts"] == 1
    plot = page["plot"]
    assert plot["metric"] == "accuracy" and plot["points"] == 3 and len(plot["lower"]) == 3


def test_the_model_page_for_a_viewer_and_a_scientist(churn: ChurnUi) -> None:
    with browser(churn.url) as viewer_client, browser(churn.url) as scientist_client:
        log_in(viewer_client, "vera")
        log_in(scientist_client, "sam")
        seen = viewer_client.get("/ui/models/churn")
        acting = scientist_client.get("/ui/models/churn")
        # every action the page offers opens its confirmation page (promote and canary
        # name the newest version not in production: their pages need one)
        links = re.findall(r'href="(/ui/models/churn/actions/[^"]+)"', acting.text)
        assert [link.replace("&amp;", "&") for link in links] == [
            f"/ui/models/churn/actions/{a}"
            for a in (
                "promote?version=3",
                "canary?version=3&percent=10",
                "split",
                "clear",
                "rollback",
            )
        ]
        for link in links:
            confirm = scientist_client.get(link.replace("&amp;", "&"))
            assert confirm.status_code == 200, (link, confirm.text)
        done = scientist_client.get("/ui/models/churn", params={"done": "canary"})
        assert '<p class="success" role="status">Canary started' in done.text
    assert seen.status_code == acting.status_code == 200
    for page in (seen.text, acting.text):
        assert "<script>x</script>" not in page and "fine &lt;script&gt;x&lt;/script&gt;" in page
        assert "<b>worse</b>" not in page and "<em>fell</em>" not in page
        assert "Keep customers" in page and "accuracy &gt;= 0.6" in page
        assert '<a href="/ui/models/churn/versions/3">v3</a>' in page
        assert '<a href="/ui/models/churn/monitoring">Monitoring</a>' in page
        assert "canary: production 90%, v2 10%" in page
        _assert_no_inline_code(page)
        figure = json.loads(
            re.search(
                r'<script type="application/json" id="fig-main">(.*?)</script>', page, re.S
            ).group(1)  # type: ignore[union-attr]
        )
        names = [trace["name"] for trace in figure["data"]]
        assert "accuracy" in names and "production version" in names
        assert len(figure["layout"]["shapes"]) >= 1  # production changed in the last 30 days
    assert "/ui/models/churn/actions/rollback" in acting.text
    assert f"/ui/alerts/{churn.alert}/ack" in acting.text
    assert "/actions/" not in seen.text and "/ack" not in seen.text


def _assert_no_inline_code(page: str) -> None:
    """The CSP allows no inline script or style: only script files and JSON data blocks."""
    for tag in re.findall(r"<script[^>]*>", page):
        assert 'type="application/json"' in tag or "src=" in tag, tag
    assert " style=" not in page and "<style" not in page


def test_the_notice_after_an_action_is_one_of_ours(churn: ChurnUi) -> None:
    with browser(churn.url) as client:
        log_in(client, "vera")
        after = client.get("/ui/models/churn", params={"done": "rolled-back"})
        made_up = client.get("/ui/models/churn", params={"done": "<i>gotcha</i>"})
    assert 'role="status">Rolled back: production points at' in after.text
    assert "Rolled back:" not in made_up.text and "gotcha" not in made_up.text


def test_an_unknown_model_is_404(churn: ChurnUi) -> None:
    with browser(churn.url) as client:
        log_in(client, "vera")
        page = client.get("/ui/models/chrun")
        api = client.get("/api/models/chrun")
    assert page.status_code == 404 and "There is no model" in page.text
    assert api.status_code == 404
    assert api.json() == {"error": "There is no model 'chrun'. Did you mean 'churn'?"}


def test_the_model_page_needs_a_login(churn: ChurnUi) -> None:
    with browser(churn.url) as client:
        assert client.get("/ui/models/churn").status_code == 303
        assert client.get("/api/models/churn").status_code == 401
