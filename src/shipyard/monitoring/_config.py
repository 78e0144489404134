"""The default rule: which drift test judges a feature, with which threshold, and when data
quality is breached. Declared once here; ``render_defaults`` writes the documentation of the
defaults from these objects, so the two cannot disagree.

Why the rule depends on both window sizes: a p-value test answers "could sampling noise
explain this gap?". With n_eff = n_ref * n_cur / (n_ref + n_cur) rows on both sides, KS at
alpha = 1e-4 flags gaps above about 2.2 / sqrt(n_eff): 0.07 at 1,000 rows, but 0.004 at
300,000, far below any change that matters. So each kind of feature uses its p-value test
while that test's smallest detectable change is larger than what the effect size would flag,
and the effect size from there on: for numeric features a 0.1-sigma shift has KS D = 0.04 and
winsorised Wasserstein 0.1, and KS reaches D = 0.04 at n_eff ~ 3,000; for categorical
features the noise of the Jensen-Shannon distance between k category shares is about
sqrt((k - 1) / (5.5 n_eff)), so chi-square decides while n_eff / (k - 1) < 200, where that
noise is still above 0.03, and the distance (threshold 0.1) from there on.

>>> config = DriftConfig()
>>> config.choose("numeric", n_reference=50_000, n_current=1_000)[0]
'ks'
>>> config.choose("numeric", n_reference=50_000, n_current=10_000)[0]
'wasserstein'
"""

from __future__ import annotations

import math
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from shipyard.errors import InvalidInput
from shipyard.monitoring._drift import DRIFT_TESTS, EPSILON, PSI_BANDS, DriftTest, get_drift_test

ColumnKind = Literal["numeric", "categorical"]


class Threshold(BaseModel):
    """A test's threshold, saying whether it bounds a p-value (drift below) or a distance
    (drift above).

    >>> Threshold(value=1e-4, bounds="p_value").value
    0.0001
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    value: float = Field(ge=0)
    bounds: Literal["p_value", "distance"]


class TestRule(BaseModel):
    """One line of the rule: features of ``kind`` use ``test`` while the window-size
    ``measure`` is below ``below`` (no bound if None). Rules are read in order; the first
    that matches wins.

    ``measure`` is ``"n_eff"`` (n_ref * n_cur / (n_ref + n_cur), values judged in each window)
    or ``"n_eff_per_df"``, n_eff / (k - 1) for k category buckets (the reference categories and
    one unseen bucket): the noise of a distance between category shares grows with k.

    >>> TestRule(kind="numeric", below=3000, test="ks").measure
    'n_eff'
    """

    __test__ = False  # not a pytest test class, despite its name
    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: ColumnKind
    test: str
    below: float | None = Field(default=None, gt=0)
    measure: Literal["n_eff", "n_eff_per_df"] = "n_eff"

    def describe(self) -> str:
        """The condition as text, e.g. ``n_eff < 3000``."""
        if self.below is None:
            return "otherwise"
        measure = "n_eff" if self.measure == "n_eff" else "n_eff / (k - 1)"
        return f"{measure} < {self.below:g}"


_DEFAULT_RULES = (
    TestRule(kind="numeric", below=3000, test="ks"),
    TestRule(kind="numeric", test="wasserstein"),
    TestRule(kind="categorical", below=200, measure="n_eff_per_df", test="chi_square"),
    TestRule(kind="categorical", test="jensen_shannon"),
)

_DEFAULT_THRESHOLDS = {
    "psi": Threshold(value=PSI_BANDS[1], bounds="distance"),
    "csi": Threshold(value=PSI_BANDS[1], bounds="distance"),
    "ks": Threshold(value=1e-4, bounds="p_value"),
    "wasserstein": Threshold(value=0.1, bounds="distance"),
    "chi_square": Threshold(value=1e-4, bounds="p_value"),
    "jensen_shannon": Threshold(value=0.1, bounds="distance"),
}

QualityMetricName = Literal[
    "absent", "type_violations", "missing", "nan", "posinf", "neginf", "out_of_range", "unseen"
]

_DEFAULT_MARGINS: dict[QualityMetricName, float] = {
    "absent": 0.0,
    "type_violations": 0.0,
    "missing": 0.01,
    "nan": 0.01,
    "posinf": 0.0,
    "neginf": 0.0,
    "out_of_range": 0.01,
    "unseen": 0.01,
}

QUALITY_BASELINES: dict[str, str] = {
    "absent": "0 (the column was in the reference)",
    "type_violations": "0 (the schema was inferred from the reference)",
    "missing": "reference missing / rows",
    "nan": "reference NaN / rows",
    "posinf": "reference +inf / rows",
    "neginf": "reference -inf / rows",
    "out_of_range": "2 / (n_ref + 1): chance a new value falls outside n_ref exchangeable ones",
    "unseen": "singletons / n_ref (Good-Turing), or the reference's '__other__' share",
}

QUALITY_DENOMINATORS: dict[str, str] = {
    "absent": "rows",
    "type_violations": "rows",
    "missing": "rows",
    "nan": "rows",
    "posinf": "rows",
    "neginf": "rows",
    "out_of_range": "finite values",
    "unseen": "present values",
}


class QualityConfig(BaseModel):
    """When a data-quality share is breached: above ``baseline + max(margin, z * se)``, with
    ``se = sqrt(b (1 - b) (1 / n_cur + 1 / n_ref))`` the binomial standard error of the
    difference of two shares (``b`` the baseline). One-sided: fewer problems is no breach.

    >>> QualityConfig(margins={"missing": 0.05}).margins["nan"]
    0.01
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    z: float = Field(default=4.0, ge=0)
    margins: dict[QualityMetricName, float] = Field(default_factory=lambda: dict(_DEFAULT_MARGINS))

    @field_validator("margins", mode="before")
    @classmethod
    def _merge_margins(cls, value: Any) -> Any:
        # Give only the margins to change; the others keep their defaults.
        return {**_DEFAULT_MARGINS, **value} if isinstance(value, dict) else value

    def limit(self, metric: str, baseline: float, n_current: int, n_reference: int) -> float:
        """The share above which ``metric`` is breached.

        >>> round(QualityConfig().limit("missing", 0.01, 1000, 50_000), 4)
        0.0227
        """
        b = min(max(baseline, 0.0), 1.0)
        variance = b * (1 - b) * (1 / max(n_current, 1) + 1 / max(n_reference, 1))
        return b + max(self.margins[metric], self.z * math.sqrt(variance))  # type: ignore[index]


class DriftConfig(BaseModel):
    """Everything that decides drift: the test rule, thresholds, the dataset-level share and
    the data-quality rule. Thresholds given are merged over the defaults.

    >>> config = DriftConfig(thresholds={"wasserstein": {"value": 0.2, "bounds": "distance"}})
    >>> config.thresholds["wasserstein"].value, config.thresholds["ks"].value
    (0.2, 0.0001)
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    rules: tuple[TestRule, ...] = _DEFAULT_RULES
    thresholds: dict[str, Threshold] = Field(default_factory=lambda: dict(_DEFAULT_THRESHOLDS))
    #: Below this many values (finite or present) in either window, drift is not judged.
    min_values: int = Field(default=30, ge=1)
    #: The dataset drifts when at least this share of the judged features drift.
    drift_share: float = Field(default=0.5, gt=0, le=1)
    quality: QualityConfig = Field(default_factory=QualityConfig)

    @field_validator("thresholds", mode="before")
    @classmethod
    def _merge_thresholds(cls, value: Any) -> Any:
        return {**_DEFAULT_THRESHOLDS, **value} if isinstance(value, dict) else value

    @model_validator(mode="after")
    def _check(self) -> DriftConfig:
        for kind in ("numeric", "categorical"):
            if not any(r.kind == kind and r.below is None for r in self.rules):
                raise ValueError(f"the rules need a last, unbounded rule for {kind} features")
        return self

    def check_tests(self, tests: tuple[type[DriftTest], ...] = DRIFT_TESTS) -> None:
        """Refuse rules naming unknown tests or tests of the wrong kind, and thresholds whose
        ``bounds`` disagree with their test."""
        for rule in self.rules:
            test = get_drift_test(rule.test, tests)
            if test.column_kind != rule.kind:
                raise InvalidInput(
                    f"The drift test {rule.test!r} applies to {test.column_kind} features. "
                    f"Got it in a rule for {rule.kind} features; pick a {rule.kind} test.",
                )
        for name, threshold in self.thresholds.items():
            test = get_drift_test(name, tests)
            if threshold.bounds != test.kind:
                raise InvalidInput(
                    f"The threshold of {name!r} bounds a {test.kind.replace('_', '-')}. "
                    f"Got bounds={threshold.bounds!r}; set bounds={test.kind!r}.",
                )
            if test.kind == "p_value" and threshold.value > 1:
                raise InvalidInput(
                    f"The threshold of {name!r} is a p-value and must be in [0, 1]. "
                    f"Got {threshold.value!r} instead.",
                )

    def choose(
        self, kind: ColumnKind, *, n_reference: int, n_current: int, n_buckets: int = 2
    ) -> tuple[str | None, str]:
        """The test judging a feature of ``kind`` given both windows' value counts (and, for
        categorical features, the number of category buckets), and why.

        >>> DriftConfig().choose("categorical", n_reference=100_000, n_current=10)
        (None, 'fewer than 30 values in a window: drift not judged')
        >>> DriftConfig().choose("categorical", n_reference=50_000, n_current=10_000, n_buckets=5)
        ('jensen_shannon', 'categorical feature, n_eff = 8333, k = 5: otherwise')
        """
        if min(n_reference, n_current) < self.min_values:
            return None, f"fewer than {self.min_values} values in a window: drift not judged"
        n_eff = n_reference * n_current / (n_reference + n_current)
        per_df = n_eff / max(n_buckets - 1, 1)
        for rule in self.rules:
            measure = n_eff if rule.measure == "n_eff" else per_df
            if rule.kind == kind and (rule.below is None or measure < rule.below):
                buckets = f", k = {n_buckets}" if kind == "categorical" else ""
                return rule.test, f"{kind} feature, n_eff = {n_eff:.0f}{buckets}: {rule.describe()}"
        raise AssertionError("unreachable: the config validator requires a last rule per kind")


def render_defaults(config: DriftConfig | None = None) -> str:
    """The rule, thresholds and quality limits of ``config`` (default: the defaults), as
    Markdown; the documentation of the defaults is this function's output.

    >>> print(render_defaults().splitlines()[2])
    | numeric | n_eff < 3000 | ks | p-value < 0.0001 |
    """
    config = config or DriftConfig()
    lines = [
        "| feature | window sizes: n_eff = n_ref * n_cur / (n_ref + n_cur) | test | drifted when |",
        "|---|---|---|---|",
    ]
    for rule in config.rules:
        lines.append(
            f"| {rule.kind} | {rule.describe()} | {rule.test} | {_bound(config, rule.test)} |"
        )
    lines.append(f"| any | fewer than {config.min_values} values in either window | none | never |")
    lines += [
        "",
        f"Dataset drift: at least {config.drift_share:.0%} of the judged features drift.",
        "",
        "| test | features | value | drifted when | what it measures |",
        "|---|---|---|---|---|",
    ]
    for test in DRIFT_TESTS:
        doc = (test.__doc__ or "").strip().splitlines()[0]
        lines.append(
            f"| {test.name} | {test.column_kind} | {test.kind.replace('_', '-')} | "
            f"{_bound(config, test.name)} | {doc} |"
        )
    lines += [
        "",
        f"PSI and CSI bands: < {PSI_BANDS[0]} stable, {PSI_BANDS[0]}-{PSI_BANDS[1]} minor, "
        f"> {PSI_BANDS[1]} major; empty bins count as a share of {EPSILON:g}.",
        "",
        f"Data quality: breached when share > baseline + max(margin, {config.quality.z:g} * se), "
        "se = sqrt(b (1 - b) (1/n_cur + 1/n_ref)).",
        "",
        "| metric | share of | baseline b | margin |",
        "|---|---|---|---|",
    ]
    for metric, margin in config.quality.margins.items():
        lines.append(
            f"| {metric} | {QUALITY_DENOMINATORS[metric]} | {QUALITY_BASELINES[metric]} | "
            f"{margin:g} |"
        )
    return "\n".join(lines) + "\n"


def _bound(config: DriftConfig, name: str) -> str:
    threshold = config.thresholds.get(name)
    if threshold is None:
        test = get_drift_test(name)
        threshold = Threshold(value=test.default_threshold, bounds=test.kind)
    sign = "<" if threshold.bounds == "p_value" else ">"
    return f"{threshold.bounds.replace('_', '-')} {sign} {threshold.value:g}"
