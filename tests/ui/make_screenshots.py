"""Make the README's screenshots of the web UI: ``docs/img/ui-catalogue.png`` and
``docs/img/ui-model.png``. Run from the repository root, with Debian's Chromium installed::

    .venv/bin/python tests/ui/make_screenshots.py

It seeds a throwaway SQLite store (a few models of several teams; ``churn`` monitored every
six hours for two weeks with a drift episode in the middle, ``fraud`` drifting now), serves
the UI on 127.0.0.1, logs in as the viewer through Chromium and saves the two pages, 1280
pixels wide, shrunk with Pillow when larger than 300 KB. The test suite never runs it, so
tests do not rewrite tracked files.
"""

from __future__ import annotations

import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path[:0] = [str(REPO / "src"), str(REPO / "tests"), str(HERE)]

from browser_support import chromium_path, log_in_page  # noqa: E402
from ui_support import add_users, running_ui  # noqa: E402

from gates_off import NO_GATES  # noqa: E402
from overview_data import register_churn, save_window, shifted  # noqa: E402
from shipyard import Client, Settings  # noqa: E402
from shipyard.registry import Registry  # noqa: E402
from shipyard.store import Store  # noqa: E402

OUT = REPO / "docs" / "img"
WIDTH = 1280
MAX_BYTES = 300_000
#: (name, team, owner, objective, description)
MODELS = (
    ("churn", "retention", "olga", "Keep subscribers who are about to leave",
     "Monthly churn risk of each subscriber"),
    ("fraud", "payments", "farid", "Stop risky card payments before they settle",
     "Flags risky card payments"),
    ("upsell", "retention", "olga", "Offer the plan each customer needs",
     "Next best plan"),
    ("pricing", "pricing", "pia", "Quote prices that win and pay", ""),
)  # fmt: skip


def seed(store: Store) -> None:
    """Users, the models above, two versions of churn (v1 in production), and monitoring."""
    add_users(store)
    admin = Client(Settings(user="sam"), store=store, project=NO_GATES).open()
    registry = Registry(store, NO_GATES)
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    for name, team, owner, objective, description in MODELS:
        registry.create_model(name, actor="admin", objective=objective, team=team, owner=owner)
        if name != "pricing":
            register_churn(admin, name, description=description)
            registry.approve(name, 1, actor="april", reason="validated on last quarter")
            registry.promote(name, 1, actor="sam", reason="first release")
    register_churn(admin, "churn", description="Retrained on fresh data")
    for step in range(14 * 4):  # every six hours for two weeks
        end = now - timedelta(hours=6 * step)
        drifting = 5 * 4 <= step < 8 * 4  # days 5 to 8 ago: the age and income shift
        frame = shifted(step, "age", "income") if drifting else shifted(step)
        save_window(admin, "churn", frame, end=end, hours=6)
    save_window(admin, "upsell", shifted(7), end=now)
    save_window(admin, "fraud", shifted(8, "age"), end=now)
    admin.close()


def shrink(path: Path) -> None:
    """Re-save ``path`` with Pillow's optimiser, then as a 256-colour image, while too big."""
    from PIL import Image

    if path.stat().st_size <= MAX_BYTES:
        return
    with Image.open(path) as image:
        image.load()
    image.save(path, optimize=True)
    if path.stat().st_size > MAX_BYTES:
        image.convert("RGB").quantize(colors=256).save(path, optimize=True)


def main() -> None:
    from playwright.sync_api import expect, sync_playwright

    executable = chromium_path()
    if executable is None:
        sys.exit("Debian's chromium is not installed (apt-get install chromium).")
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(f"sqlite:///{tmp}/shipyard.db", f"{tmp}/artifacts", creator="admin").open()
        seed(store)
        with running_ui(store, project=NO_GATES) as url, sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=executable, args=["--no-sandbox"])
            page = browser.new_page(base_url=url, viewport={"width": WIDTH, "height": 600})
            log_in_page(page, "vera")
            expect(page.get_by_role("status")).to_have_text("4 models.")
            page.screenshot(path=str(OUT / "ui-catalogue.png"), full_page=True)
            page.set_viewport_size({"width": WIDTH, "height": 1150})
            page.goto("/ui/models/churn")
            expect(page.locator(".plot .main-svg").first).to_be_visible(timeout=30_000)
            page.screenshot(path=str(OUT / "ui-model.png"))
            browser.close()
        store.close()
    for name in ("ui-catalogue.png", "ui-model.png"):
        shrink(OUT / name)
        print(f"{OUT / name}: {(OUT / name).stat().st_size // 1000} KB")


if __name__ == "__main__":
    main()
