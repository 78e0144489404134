"""The defaults are right: injected drifts are caught on the right feature, undrifted data
raises no alarm at any size, and the documented rule is the rule in the code."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from shipyard.dataset import Profile, profile_frame
from shipyard.errors import InvalidInput
from shipyard.monitoring import (
    DRIFT_TESTS,
    DriftConfig,
    TestRule,
    Threshold,
    compute_drift,
    render_defaults,
)

SEEDS = (11, 22, 33)
#: The features ``mixed_frame(..., drift=True)`` drifts (see ``DRIFTS`` in conftest.py).
DRIFTED = ["balance", "colour", "income", "plan", "score"]
REFERENCE_ROWS = 50_000


@pytest.fixture(scope="module")
def reference(mixed_frame: Callable[..., pd.DataFrame]) -> Profile:
    return profile_frame(mixed_frame(REFERENCE_ROWS, 1000))


def _describe(report):  # type: ignore[no-untyped-def]
    """What each flagged feature tripped, for assertion messages."""
    return {
        f.name: (
            f.test,
            f.score(f.test).value if f.test else None,
            [m.name for m in f.quality if m.breached],
        )
        for f in report.features
        if f.drifted or f.quality_breached
    }


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("n", [1000, 10_000, 100_000])
def test_undrifted_data_raises_no_alarm(
    reference: Profile, mixed_frame: Callable[..., pd.DataFrame], n: int, seed: int
) -> None:
    report = compute_drift(reference, mixed_frame(n, seed))
    assert report.flagged() == [], _describe(report)
    assert not report.drifted and not report.quality_breached
    assert report.n_rows == n and len(report.features) == 20


@pytest.mark.slow
@pytest.mark.parametrize("seed", SEEDS)
def test_undrifted_data_raises_no_alarm_at_one_million_rows(
    reference: Profile, mixed_frame: Callable[..., pd.DataFrame], seed: int
) -> None:
    chunks = (mixed_frame(100_000, seed * 100 + i) for i in range(10))
    report = compute_drift(reference, chunks)
    assert report.n_rows == 1_000_000
    assert report.flagged() == [], _describe(report)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("n", [1000, 10_000, 100_000])
def test_every_injected_drift_is_flagged_on_its_feature_only(
    reference: Profile, mixed_frame: Callable[..., pd.DataFrame], n: int, seed: int
) -> None:
    report = compute_drift(reference, mixed_frame(n, seed, drift=True))
    assert sorted(report.flagged()) == DRIFTED, _describe(report)
    by_name = {f.name: f for f in report.features}
    # Distribution changes are drift; the missing-value spike is a quality breach (the drift
    # tests judge present values) that PSI, which has a missing bin, also sees.
    for name in ("income", "score", "colour", "plan"):
        assert by_name[name].drifted, _describe(report)
    missing = next(m for m in by_name["balance"].quality if m.name == "missing")
    assert missing.breached and missing.share == pytest.approx(0.2, abs=0.05)
    assert by_name["balance"].score("psi").band == "major"
    unseen = next(m for m in by_name["colour"].quality if m.name == "unseen")
    assert unseen.breached


def _inject(frame: pd.DataFrame, feature: str, seed: int) -> pd.DataFrame:
    """``frame`` with the one drift of ``DRIFTS[feature]`` (see conftest.py)."""
    rng = np.random.default_rng(seed + 1000)
    n = len(frame)
    if feature == "income":
        frame["income"] += 0.5 * 12_000
    elif feature == "score":
        frame["score"] = 600 + (frame["score"] - 600) * 1.75
    elif feature == "colour":
        frame.loc[rng.random(n) < 0.1, "colour"] = "purple"
    elif feature == "balance":
        frame.loc[rng.random(n) < 0.2, "balance"] = np.nan
    else:
        plan = ["basic", "plus", "pro", "team", "enterprise"]
        frame["plan"] = rng.choice(plan, n, p=[0.25, 0.25, 0.2, 0.15, 0.15])
    return frame


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("feature", DRIFTED)
@pytest.mark.parametrize("n", [1000, 10_000])
def test_each_drift_alone_is_flagged_on_its_feature_only(
    reference: Profile, mixed_frame: Callable[..., pd.DataFrame], n: int, feature: str, seed: int
) -> None:
    report = compute_drift(reference, _inject(mixed_frame(n, seed), feature, seed))
    assert report.flagged() == [feature], _describe(report)
    kind = {"balance": "quality"}.get(feature, "drift")
    flagged = report.feature(feature)
    assert flagged.drifted if kind == "drift" else flagged.quality_breached, _describe(report)


@pytest.mark.parametrize("seed", SEEDS)
def test_a_third_of_a_sigma_mean_shift_is_caught_at_10k_rows(
    reference: Profile, mixed_frame: Callable[..., pd.DataFrame], seed: int
) -> None:
    current = mixed_frame(10_000, seed)
    current["income"] += 0.3 * 12_000
    report = compute_drift(reference, current)
    assert report.flagged() == ["income"], _describe(report)
    income = report.feature("income")
    assert income.test == "wasserstein" and income.score("wasserstein").value == pytest.approx(
        0.3, abs=0.03
    )


def test_dataset_level_flag_follows_the_configured_share(
    reference: Profile, mixed_frame: Callable[..., pd.DataFrame]
) -> None:
    current = mixed_frame(10_000, 5, drift=True)
    default = compute_drift(reference, current)
    assert default.n_drifted == 4 and default.n_judged == 20 and default.drift_share == 0.2
    assert not default.drifted and default.quality_breached
    assert compute_drift(reference, current, config=DriftConfig(drift_share=0.2)).drifted


def test_prediction_drift_on_the_outputs_profile(
    mixed_frame: Callable[..., pd.DataFrame],
) -> None:
    features = ["income", "score", "age", "visits"]
    train = mixed_frame(20_000, 7)
    y = (train["income"] + 100 * train["score"] > 50_000 + 100 * 600).map(
        {True: "yes", False: "no"}
    )
    model = LogisticRegression(max_iter=1000).fit(train[features] / train[features].std(), y)
    scale = train[features].std()

    def outputs(frame: pd.DataFrame) -> pd.DataFrame:
        # As the archive's reference profile describes outputs: label text, one proba column
        # per class.
        proba = model.predict_proba(frame[features] / scale)
        out = pd.DataFrame({"prediction": model.predict(frame[features] / scale).astype(str)})
        for i, cls in enumerate(model.classes_):
            out[f"proba_{cls}"] = proba[:, i]
        return out

    reference = profile_frame(outputs(train.head(5000)))
    assert reference.columns["prediction"].kind == "categorical"
    steady = compute_drift(reference, outputs(mixed_frame(20_000, 8)))
    assert steady.flagged() == [], _describe(steady)
    drifted = compute_drift(reference, outputs(mixed_frame(20_000, 9, drift=True)))
    assert set(drifted.flagged()) == {"prediction", "proba_no", "proba_yes"}, _describe(drifted)


def test_the_rule_switches_on_both_window_sizes() -> None:
    config = DriftConfig()
    assert config.choose("numeric", n_reference=50_000, n_current=2000)[0] == "ks"
    assert config.choose("numeric", n_reference=50_000, n_current=20_000)[0] == "wasserstein"
    # A small reference keeps the p-value test even for a huge current window.
    assert config.choose("numeric", n_reference=2000, n_current=10**7)[0] == "ks"
    assert config.choose("categorical", n_reference=50_000, n_current=5000, n_buckets=4)[0] == (
        "jensen_shannon"
    )
    assert config.choose("categorical", n_reference=50_000, n_current=5000, n_buckets=201)[0] == (
        "chi_square"
    )
    assert config.choose("numeric", n_reference=50_000, n_current=29)[0] is None


def test_rendered_defaults_are_the_code() -> None:
    table = render_defaults()
    config = DriftConfig()
    for rule in config.rules:
        threshold = config.thresholds[rule.test]
        sign = "<" if threshold.bounds == "p_value" else ">"
        row = f"| {rule.kind} | {rule.describe()} | {rule.test} | "
        assert f"{row}{threshold.bounds.replace('_', '-')} {sign} {threshold.value:g} |" in table
    for test in DRIFT_TESTS:
        assert f"| {test.name} | {test.column_kind} |" in table
    for metric, margin in config.quality.margins.items():
        assert f"| {metric} |" in table and f"| {margin:g} |" in table
    custom = DriftConfig(
        thresholds={"ks": Threshold(value=0.01, bounds="p_value")}, drift_share=0.3
    )
    assert "| numeric | n_eff < 3000 | ks | p-value < 0.01 |" in render_defaults(custom)
    assert "at least 30% of the judged features" in render_defaults(custom)


def test_thresholds_say_what_they_bound() -> None:
    config = DriftConfig.model_validate(
        {"thresholds": {"wasserstein": {"value": 0.2, "bounds": "distance"}}}
    )
    assert config.thresholds["wasserstein"].value == 0.2 and config.thresholds["ks"].value == 1e-4
    wrong = DriftConfig(thresholds={"ks": Threshold(value=0.1, bounds="distance")})
    with pytest.raises(InvalidInput, match="The threshold of 'ks' bounds a p-value"):
        compute_drift(
            profile_frame(pd.DataFrame({"x": [1.0, 2.0]})), pd.DataFrame({"x": [1.0]}), config=wrong
        )
    misplaced = DriftConfig(
        rules=(TestRule(kind="numeric", test="chi_square"), *DriftConfig().rules)
    )
    with pytest.raises(InvalidInput, match="'chi_square' applies to categorical features"):
        misplaced.check_tests()
    with pytest.raises(ValueError, match="last, unbounded rule for numeric"):
        DriftConfig(rules=(TestRule(kind="numeric", below=10, test="ks"),))


def test_thresholds_change_verdicts(
    reference: Profile, mixed_frame: Callable[..., pd.DataFrame]
) -> None:
    current = mixed_frame(10_000, 3)
    current["income"] += 0.3 * 12_000
    lenient = DriftConfig(thresholds={"wasserstein": Threshold(value=0.5, bounds="distance")})
    assert compute_drift(reference, current, config=lenient).flagged() == []
