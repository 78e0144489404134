"""The catalogue (``/ui/`` and ``GET /api/models``): every model with its health in plain
words, searched, filtered and paginated; bad input refused; escaped; roles enforced."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import httpx
from ui_support import add_users, log_in

from overview_data import raise_alert, register_churn, save_window, shifted
from shipyard import Client
from shipyard.alerting import Alerts
from shipyard.registry import Registry
from shipyard.store import Store


def _raise_alert(store: Store, model: str, n: int) -> None:
    """``n`` open alerts of ``model``, and one more acknowledged (which is not open)."""
    for _ in range(n):
        raise_alert(store, model)
    Alerts(store).acknowledge(raise_alert(store, model), actor="sam")


def test_health_in_plain_words(
    client_for: Callable[[str], Client], store: Store, open_browser: Callable[[], httpx.Client]
) -> None:
    add_users(store)
    admin = client_for("admin")
    registry = Registry(store)
    now = datetime.now(UTC)
    for name in ("drifting", "clean", "quiet", "stale"):
        register_churn(admin, name)
    save_window(admin, "drifting", shifted(1, "age", "income", "plan"), end=now)
    save_window(admin, "clean", shifted(2), end=now)
    save_window(admin, "stale", shifted(3), end=now - timedelta(days=3, hours=1))
    registry.set_details("clean", actor="admin", team="retention", owner="olga")
    _raise_alert(store, "quiet", 2)
    client = log_in(open_browser(), "vera")

    models = {m["name"]: m for m in client.get("/api/models").json()["models"]}
    drifting = models["drifting"]["health"]
    assert drifting["status"] == "attention" and drifting["label"] == "needs attention"
    assert "3 features drifted: age, income, plan" in drifting["reasons"]
    assert models["clean"]["health"]["status"] == "healthy"
    assert models["clean"]["health"]["reasons"] == []
    assert (models["clean"]["team"], models["clean"]["owner"]) == ("retention", "olga")
    assert models["quiet"]["health"]["reasons"] == ["2 open alerts"]
    assert models["quiet"]["open_alerts"] == 2
    assert models["stale"]["health"]["reasons"] == ["not monitored for 3 days"]
    register_churn(admin, "fresh")
    fresh = client.get("/api/models", params={"q": "fresh"}).json()["models"][0]
    assert fresh["health"]["status"] == "unknown"
    assert fresh["health"]["label"] == "not monitored yet" and fresh["last_monitored"] is None

    page = client.get("/ui/")
    assert page.status_code == 200
    assert "3 features drifted: age, income, plan" in page.text
    assert '<span class="badge healthy">healthy</span>' in page.text
    assert "not monitored yet" in page.text and "2 open alerts" in page.text


def test_search_filters_and_pages(
    client_for: Callable[[str], Client], store: Store, open_browser: Callable[[], httpx.Client]
) -> None:
    add_users(store)
    registry = Registry(store)
    for i in range(53):
        registry.create_model(
            f"m{i:02d}",
            actor="admin",
            objective="keep customers" if i % 2 else "price risk",
            team="retention" if i < 10 else "pricing",
            owner="olga" if i == 7 else None,
        )
    register_churn(client_for("admin"), "m00")
    client = log_in(open_browser(), "vera")

    first = client.get("/api/models").json()
    assert (first["total"], first["pages"], len(first["models"])) == (53, 2, 50)
    assert first["teams"] == ["pricing", "retention"]
    second = client.get("/api/models", params={"page": 2}).json()
    assert [m["name"] for m in second["models"]] == ["m50", "m51", "m52"]
    assert client.get("/api/models", params={"page": 3}).json()["models"] == []

    def names(**params: str) -> list[str]:
        return [m["name"] for m in client.get("/api/models", params=params).json()["models"]]

    assert names(q="OLGA") == ["m07"]
    assert names(q="customers", team="retention") == ["m01", "m03", "m05", "m07", "m09"]
    assert names(q="m0", stage="candidate") == ["m00"]
    assert names(stage="none", team="retention")[:2] == ["m01", "m02"]
    assert names(q="m00", health="unknown") == ["m00"]
    assert names(q="m00", health="healthy") == []
    assert names(q="100%_") == []

    page = client.get("/ui/", params={"team": "pricing"})
    assert "43 models." in page.text
    page = client.get("/ui/")
    assert 'href="/ui/?page=2" rel="next"' in page.text
    assert "m49" in page.text and "m50" not in page.text


def test_html_in_a_description_is_text(
    store: Store, open_browser: Callable[[], httpx.Client]
) -> None:
    add_users(store)
    with store.write() as session:
        from shipyard.store.tables import Model

        session.add(
            Model(
                name="evil",
                description="<script>alert('x')</script>",
                tags={},
                created_at=datetime.now(UTC),
                created_by="admin",
                objective="<b>bold</b>",
                team="<i>t</i>",
            )
        )
    client = log_in(open_browser(), "vera")
    page = client.get("/ui/")
    assert "<script>alert" not in page.text and "&lt;script&gt;alert(" in page.text
    assert "<b>bold</b>" not in page.text and "&lt;b&gt;bold&lt;/b&gt;" in page.text
    assert "<i>t</i>" not in page.text
    assert client.get("/api/models").json()["models"][0]["description"].startswith("<script>")
    model = client.get("/ui/models/evil")
    assert model.status_code == 200 and "&lt;script&gt;alert(" in model.text
    assert "<script>alert" not in model.text and "<b>bold</b>" not in model.text
    monitoring = client.get("/ui/models/evil/monitoring")
    assert monitoring.status_code == 200 and "No monitoring results" in monitoring.text


def test_bad_query_parameters_are_refused_with_400(
    store: Store, open_browser: Callable[[], httpx.Client]
) -> None:
    add_users(store)
    client = log_in(open_browser(), "vera")
    for params, words in (
        ({"page": "-1"}, "page"),
        ({"page": "abc"}, "page"),
        ({"stage": "retired"}, "stage must be one of production, staging, candidate, none"),
        ({"health": "great"}, "health must be one of healthy, attention, unknown"),
    ):
        api = client.get("/api/models", params=params)
        assert api.status_code == 400 and words in api.json()["error"], api.text
        page = client.get("/ui/", params=params)
        assert page.status_code == 400 and words in page.text


def test_logged_out_callers_are_sent_to_log_in(open_browser: Callable[[], httpx.Client]) -> None:
    client = open_browser()
    page = client.get("/ui/?q=churn")
    assert page.status_code == 303
    assert page.headers["location"].startswith("/ui/login?next=/ui/%3Fq%3Dchurn")
    api = client.get("/api/models")
    assert api.status_code == 401 and api.json() == {"error": "Log in to see this page."}


def test_plotly_and_the_page_script_are_served_from_the_package(
    open_browser: Callable[[], httpx.Client],
) -> None:
    client = open_browser()
    script = client.get("/ui/static/plotly.min.js")
    assert script.status_code == 200
    assert script.headers["content-type"].startswith("application/javascript")
    assert "max-age=31536000" in script.headers["cache-control"]
    assert "plotly.js" in script.text[:200] and "https://cdn.plot.ly" not in script.text
    css = client.get("/ui/static/plotly.css")
    assert css.headers["content-type"].startswith("text/css")
    assert ".js-plotly-plot .plotly .main-svg{position:absolute;" in css.text
    page_script = client.get("/ui/static/ui.js")
    assert page_script.status_code == 200 and "Plotly.newPlot" in page_script.text


def test_the_api_is_documented_with_its_error_responses(
    open_browser: Callable[[], httpx.Client],
) -> None:
    schema = open_browser().get("/api/openapi.json").json()
    paths = schema["paths"]
    for path, statuses in (
        ("/api/models", {"200", "400", "401", "403"}),
        ("/api/models/{name}", {"200", "401", "403", "404"}),
        ("/api/models/{name}/monitoring", {"200", "400", "401", "403", "404"}),
        ("/api/models/{name}/monitoring/windows/{run_id}", {"200", "401", "403", "404"}),
    ):
        responses = paths[path]["get"]["responses"]
        assert statuses <= set(responses), (path, sorted(responses))
        assert responses["404" if "404" in statuses else "401"]["content"]["application/json"]
    components = schema["components"]["schemas"]
    assert {"Catalogue", "ModelPage", "MonitoringPage", "WindowDetail", "ApiError"} <= set(
        components
    )
    assert not any(path.startswith("/ui") for path in paths)
