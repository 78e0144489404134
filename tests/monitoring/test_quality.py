"""Data quality against the training baseline, and the result document."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from shipyard.dataset import profile_frame
from shipyard.monitoring import DriftReport, QualityConfig, compute_drift


def _metric(report: DriftReport, feature: str, name: str):  # type: ignore[no-untyped-def]
    return next(m for m in report.feature(feature).quality if m.name == name)


def test_missing_share_breaches_only_well_above_the_baseline() -> None:
    rng = np.random.default_rng(0)
    train = pd.DataFrame({"x": rng.normal(size=20_000)})
    train.loc[rng.random(20_000) < 0.05, "x"] = np.nan
    reference = profile_frame(train)

    def window(share: float, n: int = 10_000) -> DriftReport:
        x = rng.normal(size=n)
        x[: int(share * n)] = np.nan
        return compute_drift(reference, pd.DataFrame({"x": x}))

    missing = _metric(window(0.055), "x", "missing")
    assert missing.baseline == pytest.approx(train["x"].isna().mean())
    b = missing.baseline
    se = np.sqrt(b * (1 - b) * (1 / 10_000 + 1 / 20_000))
    assert not missing.breached and missing.limit == pytest.approx(b + max(0.01, 4 * se))
    spike = _metric(window(0.2), "x", "missing")
    assert spike.breached and spike.count == 2000 and spike.share == 0.2
    # At small n the binomial tolerance is wider than the margin.
    small = _metric(window(0.1, n=100), "x", "missing")
    se = np.sqrt(small.baseline * (1 - small.baseline) * (1 / 100 + 1 / 20_000))
    assert small.limit == pytest.approx(small.baseline + 4 * se) and not small.breached


def test_infinities_type_violations_and_range() -> None:
    reference = profile_frame(pd.DataFrame({"x": np.arange(1000.0)}))
    current = pd.DataFrame(
        {"x": pd.Series([*range(990), np.inf, "oops", *[5000.0] * 8], dtype=object)}
    )
    report = compute_drift(reference, current)
    breached = {m.name for m in report.feature("x").quality if m.breached}
    assert breached == {"posinf", "type_violations"}  # 8 of 998 out of range is < 1% + baseline
    oor = _metric(report, "x", "out_of_range")
    assert oor.count == 8 and oor.denominator == 998 and oor.baseline == pytest.approx(2 / 1001)


def test_unseen_categories_use_a_good_turing_baseline() -> None:
    rng = np.random.default_rng(1)
    train = pd.Series(rng.choice([f"c{i}" for i in range(50)], 2000))
    train[:40] = [f"rare{i}" for i in range(40)]  # 40 singletons: 2% new values expected
    reference = profile_frame(pd.DataFrame({"c": train}))
    fresh = pd.Series(rng.choice([f"c{i}" for i in range(50)], 5000))
    fresh[:100] = [f"new{i}" for i in range(100)]  # 2% unseen: as expected, no breach
    unseen = _metric(compute_drift(reference, pd.DataFrame({"c": fresh})), "c", "unseen")
    assert unseen.baseline == pytest.approx(40 / 2000) and unseen.count == 100
    assert not unseen.breached
    fresh[:500] = "brand_new"
    assert _metric(compute_drift(reference, pd.DataFrame({"c": fresh})), "c", "unseen").breached


def test_quality_margins_are_configurable() -> None:
    config = QualityConfig(margins={"missing": 0.5})
    assert config.margins["missing"] == 0.5 and config.margins["unseen"] == 0.01
    with pytest.raises(ValueError, match="margins"):
        QualityConfig.model_validate({"margins": {"nonsense": 0.1}})


def test_report_is_json_with_a_record_per_feature() -> None:
    rng = np.random.default_rng(2)
    train = pd.DataFrame({"x": rng.normal(size=5000), "c": rng.choice(["a", "b"], 5000)})
    report = compute_drift(profile_frame(train), train.iloc[:2000])
    data = json.loads(report.model_dump_json())
    assert DriftReport.model_validate(data) == report
    assert [f["name"] for f in data["features"]] == ["x", "c"]
    x = data["features"][0]
    assert x["test"] == "ks" and {s["name"] for s in x["scores"]} == {"psi", "ks", "wasserstein"}
    assert {"drifted", "quality_breached", "quality", "reason", "n_values"} <= x.keys()
    assert data["n_rows"] == 2000 and data["elapsed_seconds"] >= 0
    assert data["config"]["rules"][0]["test"] == "ks"
