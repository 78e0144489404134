"""``shipyard serve --ui``: the model server and the UI on one port (``with_ui``)."""

from __future__ import annotations

import httpx
from ui_support import add_users, browser, log_in

from shipyard.serving import create_app, serve_in_thread
from shipyard.settings import ServeSettings
from shipyard.store import Store
from shipyard.ui import create_ui, with_ui


def test_the_server_and_the_ui_answer_on_one_port(store: Store) -> None:
    add_users(store)
    serving = create_app(store, settings=ServeSettings(auth=False))
    combined = with_ui(serving, create_ui(store))
    with serve_in_thread(combined) as url, browser(url) as client:  # type: ignore[arg-type]
        assert client.get("/v2/health/live").status_code == 200  # the lifespan ran
        assert client.get("/v2").json()["name"]
        assert client.get("/models").status_code == 200
        login = client.get("/ui/login")
        assert login.status_code == 200 and "Log in to Shipyard" in login.text
        log_in(client, "april")
        assert client.get("/api/me").json()["name"] == "april"
        assert "/v2/health/live" in client.get("/openapi.json").json()["paths"]
        assert "/api/me" in client.get("/api/openapi.json").json()["paths"]
        assert client.get("/ui/static/ui.css").status_code == 200
        missing = client.get("/nope")
        assert missing.status_code == 404 and "error" in missing.json()


def test_a_path_the_server_routes_stays_the_servers(store: Store) -> None:
    serving = create_app(store, settings=ServeSettings(auth=False))

    @serving.get("/api/server-owned")
    async def owned() -> dict[str, str]:
        return {"from": "server"}

    combined = with_ui(serving, create_ui(store))
    with serve_in_thread(combined) as url:  # type: ignore[arg-type]
        assert httpx.get(f"{url}/api/server-owned").json() == {"from": "server"}
        assert httpx.get(f"{url}/api/me").status_code == 401  # the UI's
