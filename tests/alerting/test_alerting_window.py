"""``window`` on an alert rule: the mean of the stored values of the window is judged."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from shipyard.alerting import AlertConfig, AlertRule, evaluate
from shipyard.config import load_project
from shipyard.errors import InvalidInput
from shipyard.store import Store
from shipyard.store.tables import MonitoringResult

T = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def _save(
    store: Store,
    hours_ago: float,
    value: float | None,
    *,
    feature: str = "age",
    version: int = 1,
    metric: str = "psi",
) -> MonitoringResult:
    end = T - timedelta(hours=hours_ago)
    row = MonitoringResult(
        run_id=f"run-{hours_ago}-{feature}-{version}-{metric}",
        model_name="churn",
        version=version,
        source="test",
        window_start=end - timedelta(hours=1),
        window_end=end,
        metric=metric,
        feature=feature,
        value=value,
        threshold=0.2,
        flagged=value is not None and value > 0.2,
        rows=1000,
        seconds=0.1,
        created_at=end,
    )
    with store.write() as session:
        session.add(row)
    with store.read() as session:
        stored = session.scalar(select(MonitoringResult).where(MonitoringResult.id == row.id))
    assert stored is not None
    return stored


@pytest.fixture
def series(store: Store) -> MonitoringResult:
    """psi of age, churn v1: 0.9 (10h ago, outside 6h), 0.5, 0.1, 0.2 then 0.25 now.

    Noise that must not count: other features, versions and metrics at the same times, a
    missing value, and a later run (after the judged one).
    """
    _save(store, 10, 0.9)
    for hours, value in ((5, 0.5), (3, 0.1), (1, 0.2)):
        _save(store, hours, value)
        _save(store, hours, 5.0, feature="income")
        _save(store, hours, 5.0, version=2)
        _save(store, hours, 5.0, metric="ks")
    _save(store, 2, None)
    _save(store, -1, 7.0)  # an hour after the judged run: not in its window
    return _save(store, 0, 0.25)


def test_the_mean_over_the_window_is_judged_not_the_latest_value(
    store: Store, series: MonitoringResult
) -> None:
    latest = AlertRule(name="latest", metric="psi", threshold=0.24)
    windowed = AlertRule(name="smooth", metric="psi", threshold=0.24, window="6h")
    # mean over 6h = (0.5 + 0.1 + 0.2 + 0.25) / 4 = 0.2625 > 0.24: both fire
    fired = evaluate([latest, windowed], [series], store=store)
    assert [r.name for r, _ in fired] == ["latest", "smooth"]
    alert = fired[1][1]
    assert alert.value == pytest.approx(0.2625)
    assert alert.threshold == 0.24 and alert.feature == "age" and alert.version == 1
    assert alert.facts == {"Window": "6h (4 run(s))", "Latest value": "0.25"}
    assert "mean of psi on age over the last 6h (4 run(s)) is 0.2625" in alert.message
    assert "Window: 6h (4 run(s))" in alert.text
    # above both the mean (0.2625) and the latest value (0.25): nothing fires
    high = AlertRule(name="h", metric="psi", threshold=0.27, window="6h")
    assert evaluate([high], [series], store=store) == []
    # 2h: only 0.2 (1h ago) and 0.25 count -> 0.225, below 0.24, although the latest is above
    short = AlertRule(name="short", metric="psi", threshold=0.24, window="2h")
    assert evaluate([short], [series], store=store) == []
    # 12h also takes the 0.9 of 10 hours ago: (0.9 + 1.05) / 5 = 0.39
    ((_, long_alert),) = evaluate(
        [AlertRule(name="long", metric="psi", threshold=0.3, window="12h")], [series], store=store
    )
    assert long_alert.value == pytest.approx(0.39)


def test_a_single_low_run_does_not_clear_a_high_mean(store: Store) -> None:
    for hours in (4, 3, 2, 1):
        _save(store, hours, 0.6)
    dip = _save(store, 0, 0.05)  # flapping: one good run among bad ones
    latest = AlertRule(name="latest", metric="psi", threshold=0.3)
    smooth = AlertRule(name="smooth", metric="psi", threshold=0.3, window="6h")
    fired = evaluate([latest, smooth], [dip], store=store)
    assert [r.name for r, _ in fired] == ["smooth"]
    assert fired[0][1].value == pytest.approx((4 * 0.6 + 0.05) / 5)


def test_below_with_a_window(store: Store) -> None:
    for hours, value in ((3, 0.70), (2, 0.72), (1, 0.95)):
        _save(store, hours, value, metric="accuracy", feature="*")
    row = _save(store, 0, 0.90, metric="accuracy", feature="*")
    rule = AlertRule(name="acc", metric="accuracy", below=0.85, window="4h")
    ((_, alert),) = evaluate([rule], [row], store=store)
    assert alert.value == pytest.approx((0.70 + 0.72 + 0.95 + 0.90) / 4)
    assert alert.threshold == 0.85 and alert.feature is None
    assert evaluate([AlertRule(name="acc", metric="accuracy", below=0.85)], [row]) == []


def test_without_a_store_a_windowed_rule_judges_the_latest_value(
    store: Store, series: MonitoringResult
) -> None:
    rule = AlertRule(name="smooth", metric="psi", threshold=0.27, window="6h")
    assert evaluate([rule], [series], store=store) == []
    assert evaluate([AlertRule(name="smooth", metric="psi", threshold=0.24)], [series])


def alert_config_of(path: Path) -> AlertConfig:
    return AlertConfig.from_project(load_project(path))


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ('window = "6"', "window: must be a whole number >= 1 followed by m, h, d or w"),
        ('window = "0h"', "Got '0h' instead"),
        ('window = "6 h"', "Got '6 h' instead"),
        ("window = 6", "window: Input should be a valid string"),
        ('window = "1y"', "Got '1y' instead"),
        ('cooldown = "soon"', "cooldown: must be a whole number >= 0"),
        ("below = 0.1", "sets both 'threshold' (fires above) and 'below' (fires below)"),
    ],
)
def test_bad_windows_and_limits_are_refused(tmp_path: Path, extra: str, message: str) -> None:
    config = tmp_path / "shipyard.toml"
    config.write_text(
        f'[[alerts]]\nname = "psi"\nmetric = "psi"\nthreshold = 0.2\n{extra}\n', encoding="utf-8"
    )
    with pytest.raises(InvalidInput) as info:
        alert_config_of(config)
    assert message in info.value.message
    assert info.value.message.startswith(f"{config}: [[alerts]] 'psi'")


def test_window_needs_a_limit_and_duplicate_names_are_refused(tmp_path: Path) -> None:
    config = tmp_path / "shipyard.toml"
    config.write_text('[[alerts]]\nname = "psi"\nmetric = "psi"\nwindow = "6h"\n')
    with pytest.raises(InvalidInput, match="needs 'threshold' or 'below'"):
        alert_config_of(config)
    rule = '[[alerts]]\nname = "psi"\nmetric = "psi"\nthreshold = 0.2\nwindow = "6h"\n'
    config.write_text(rule)
    (loaded,) = alert_config_of(config).rules
    assert isinstance(loaded, AlertRule)
    assert loaded.window_delta == timedelta(hours=6) and loaded.condition == "> 0.2"
    config.write_text(rule + rule)
    with pytest.raises(InvalidInput, match=r"\[\[alerts\]\] 'psi' name: declared twice"):
        alert_config_of(config)
