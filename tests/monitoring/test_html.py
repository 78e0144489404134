"""The HTML drift report: self-contained (plotly.js embedded once, no CDN), escaped, and
showing which features drifted.

A DriftReport holds scores, not counts, so the tests pass the current window's distribution
as ``current_profile`` (``profile_frame`` of the window) or as the accumulator's ``states``.
"""

from __future__ import annotations

import datetime as dt
import re

import numpy as np
import pandas as pd
import plotly.offline
import pytest

from shipyard.dataset import Profile, profile_frame
from shipyard.errors import InvalidInput
from shipyard.monitoring import DriftAccumulator, DriftReport, build_report, compute_drift
from shipyard.monitoring._html import plotly_js, render_html

EVIL = "<script>alert(1)</script>"
PLOTLYJS = plotly_js()


def _frame(n: int, seed: int, *, drift: bool) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    age = rng.normal(40, 10, n) + (8 if drift else 0)
    income = rng.lognormal(10, 0.5, n)
    if drift:
        income[rng.random(n) < 0.2] = np.nan
    plan = rng.choice(["basic", "plus", "pro"], n, p=[0.6, 0.3, 0.1]).astype(object)
    if drift:
        plan[rng.random(n) < 0.15] = "enterprise & co"
    evil = rng.choice(["a", "<b>"], n)
    return pd.DataFrame({"age": age, "income": income, "plan": plan, EVIL: evil})


@pytest.fixture(scope="module")
def reference() -> Profile:
    return profile_frame(_frame(20_000, 0, drift=False))


def _render(reference: Profile, *, drift: bool, **kwargs: object) -> tuple[DriftReport, str]:
    current = _frame(5_000, 1, drift=drift)
    report = compute_drift(reference, current)
    page = render_html(
        report,
        reference,
        title="churn <v3>",
        current_profile=profile_frame(current),
        **kwargs,  # type: ignore[arg-type]
    )
    return report, page


def _outside_plotlyjs(page: str) -> str:
    assert page.count(PLOTLYJS) == 1
    return page.replace(PLOTLYJS, "")


@pytest.mark.parametrize("drift", [False, True])
def test_page_is_self_contained(reference: Profile, drift: bool) -> None:
    _, page = _render(reference, drift=drift)
    assert page.startswith("<!DOCTYPE html>")
    assert "<script src=" not in page.lower()
    # The embedded library is the basic build: none of the full bundle's map code, which
    # fetches tiles, styles and icons from CDNs.
    for host in ("cdn.jsdelivr.net", "cartocdn.com", "arcgisonline.com", "openmaptiles.org"):
        assert host not in page, host
    # Nor the defaults the basic build keeps (topojson from cdn.plot.ly, Chart Studio): the
    # only addresses left are XML namespaces and links in comments and error texts.
    assert "cdn" not in page.lower()
    hosts = set(re.findall(r"https?://([\w.-]+)", page))
    assert hosts <= {
        "www.w3.org",
        "plotly.com",
        "github.com",
        "getify.mit-license.org",
        "syntheti.cc",
    }, hosts
    rest = _outside_plotlyjs(page)
    # No link, script or stylesheet from the network outside the embedded library.
    assert "http://" not in rest and "https://" not in rest
    assert "cdn" not in rest.lower()
    assert rest.count("Plotly.newPlot(") == 4  # one distribution chart per feature


@pytest.mark.parametrize("drift", [False, True])
def test_every_feature_is_shown_and_escaped(reference: Profile, drift: bool) -> None:
    report, page = _render(reference, drift=drift)
    rest = _outside_plotlyjs(page)
    for feature in report.features:
        if feature.name != EVIL:
            assert feature.name in rest
    assert EVIL not in rest
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in rest
    assert "<b>" not in rest  # a category, escaped in the chart labels too
    assert "churn &lt;v3&gt;" in rest
    # Exactly the page's own script elements: plotly.js plus one per chart.
    assert rest.count("<script>") == 1 + rest.count("Plotly.newPlot(")


def _row(page: str, name: str) -> str:
    match = re.search(
        rf'<tr class="feature-row[^"]*" data-feature="{re.escape(name)}">.*?</tr>', page
    )
    assert match, name
    return match.group(0)


def test_drifted_features_are_marked_and_listed_first(reference: Profile) -> None:
    report, page = _render(reference, drift=True)
    assert report.drifted and report.feature("age").drifted and report.feature("plan").drifted
    assert report.feature("income").quality_breached
    assert "dataset drift" in page
    assert f"{report.n_drifted} of {report.n_judged} judged features drifted" in page
    age, evil = _row(page, "age"), _row(page, "&lt;script&gt;alert(1)&lt;/script&gt;")
    assert "flagged" in age and ">drift<" in age
    assert "flagged" not in evil and ">drift<" not in evil
    assert "missing" in _row(page, "income")  # the quality breach is named
    # Drifted and breached rows come before the unflagged one.
    assert page.index('data-feature="age"') < page.index('data-feature="&lt;script')
    assert page.index('data-feature="income"') < page.index('data-feature="&lt;script')
    assert "enterprise &amp; co" not in page  # unseen values are summed, not named, from a profile


def test_undrifted_report_is_green(reference: Profile) -> None:
    report, page = _render(reference, drift=False)
    assert not report.drifted and not report.quality_breached
    assert "no drift" in page and "0 data-quality breaches" in page
    assert "feature-row flagged" not in page and ">drift<" not in page


def test_states_give_exact_current_shares(reference: Profile) -> None:
    current = _frame(5_000, 1, drift=True)
    accumulator = DriftAccumulator(reference).update(current)
    report = build_report(accumulator)
    page = render_html(report, reference, title="t", states=accumulator.states)
    assert page.count('"name":"current"') == 4
    assert "Most frequent unseen: enterprise &amp; co (" in page


def test_without_current_distribution_only_reference_is_drawn(reference: Profile) -> None:
    report = compute_drift(reference, _frame(1_000, 2, drift=False))
    page = render_html(report, reference, title="t")
    assert '"name":"reference"' in page and '"name":"current"' not in page
    assert "The current distribution was not given." in page


def test_history_draws_one_chart_per_metric(reference: Profile) -> None:
    ends = pd.date_range("2024-05-01", periods=5, freq="D", tz="UTC")
    history = pd.DataFrame(
        [
            {"window_end": end, "feature": feature, "metric": metric, "value": v}
            for i, end in enumerate(ends)
            for feature in ("age", EVIL)
            for metric, v in (("psi", 0.05 * i), ("wasserstein", 0.02 * i))
        ]
    )
    when = dt.datetime(2024, 5, 6, 12, tzinfo=dt.UTC)
    _, page = _render(
        reference,
        drift=True,
        history=history,
        window="2024-05-05 to 2024-05-06",
        generated_at=when,
    )
    rest = _outside_plotlyjs(page)
    assert rest.count("Plotly.newPlot(") == 4 + 2
    assert "psi over time" in rest and "wasserstein over time" in rest
    assert "threshold 0.25" in rest  # the configured PSI threshold is drawn
    assert "2024-05-06 12:00:00 UTC" in rest and "2024-05-05 to 2024-05-06" in rest
    assert EVIL not in rest


def test_history_without_the_columns_is_refused(reference: Profile) -> None:
    report = compute_drift(reference, _frame(500, 3, drift=False))
    with pytest.raises(InvalidInput, match="lacks \\['metric'\\]"):
        render_html(
            report,
            reference,
            title="t",
            history=pd.DataFrame({"window_end": [], "feature": [], "value": []}),
        )


def test_the_bundled_plotly_js_is_the_plotly_packages_version() -> None:
    """The figures are made by the ``plotly`` package: its plotly.js version draws them."""
    full = re.search(r"plotly\.js v(\d+\.\d+\.\d+)", plotly.offline.get_plotlyjs()[:500])
    basic = re.search(r"plotly\.js \(basic - minified\) v(\d+\.\d+\.\d+)", PLOTLYJS[:500])
    assert full and basic and basic.group(1) == full.group(1)
