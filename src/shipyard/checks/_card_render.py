"""A model card for people: Markdown (readable in a terminal, pasteable into a wiki) and one
self-contained HTML page (``templates/card.html.j2``: every value escaped, plotly inlined).

>>> print(md_cell("a | b\\nc"))
a \\| b c
"""

from __future__ import annotations

from typing import Any

from shipyard.checks._card_model import GateLine, MetricLine, ModelCard, Table
from shipyard.checks._pages import render_page


def card_markdown(card: ModelCard) -> str:
    """The card as Markdown: one ``##`` heading per section of Mitchell et al.

    >>> card_markdown(card).splitlines()[0]  # doctest: +SKIP
    '# Model card: churn v3'
    """
    d = card.details
    out = [f"# Model card: {d.name} v{d.version}", ""]
    out += [f"_Generated {card.generated_at:%Y-%m-%d %H:%M} UTC by Shipyard._", ""]
    out += _notes(card.notes.get("overview", ""))
    out += ["## Model details", "", "| | |", "| --- | --- |"]
    out += [f"| {k} | {md_cell(v)} |" for k, v in details_rows(card)]
    out += ["", "## Intended use", ""]
    use = card.intended_use
    out.append(f"- Business objective: {use.objective or '(not recorded)'}")
    out.append(f"- Acceptance criterion: {criterion_text(card)}")
    out += ["", *_notes(use.notes)]
    if use.out_of_scope:
        out += ["### Out-of-scope uses", "", *_notes(use.out_of_scope)]
    out += ["## Factors", ""]
    out.append(f"- Sensitive features: {', '.join(card.factors.sensitive) or '(none declared)'}")
    out.append(f"- Slices evaluated: {', '.join(card.factors.sliced) or '(none)'}")
    out += ["", *_notes(card.factors.notes), "## Metrics", ""]
    registered = ", ".join(f"{k} {num(v)}" for k, v in card.metrics.registered.items())
    out += [f"Registered with the archive (its eval rows): {registered or '(none)'}.", ""]
    out += [validation_text(card), ""]
    if card.metrics.validated:
        out += ["| metric | value | 95% interval | limit | champion | gate |"]
        out += ["| --- | --- | --- | --- | --- | --- |"]
        out += [_metric_row(m) for m in card.metrics.validated]
        out.append("")
    ev = card.evaluation_data
    out += ["## Evaluation data", "", f"- Validated on: {ev.data_source or '(not validated)'}"]
    out.append(f"- Rows: {ev.rows if ev.rows is not None else 'not recorded'}")
    archive_rows = ev.archive_rows if ev.archive_rows is not None else "none"
    out += [f"- Eval rows in the archive: {archive_rows}", "", *_notes(ev.notes)]
    out += ["## Training data", ""]
    if card.training_data.datasets:
        out += ["| dataset | rows | content hash | columns |", "| --- | --- | --- | --- |"]
        for ds in card.training_data.datasets:
            columns = ", ".join(f"{c['name']} ({c['dtype']})" for c in ds.columns)
            out.append(
                f"| {md_cell(ds.name)} | {num(ds.rows)} | {ds.content_hash} | {md_cell(columns)} |"
            )
    else:
        out.append("No dataset fingerprints in the version's lineage.")
    out += ["", *_notes(card.training_data.notes), "## Quantitative analyses", ""]
    qa = card.quantitative_analyses
    for g in [*qa.slices, *qa.fairness]:
        out += _gate_md(g)
    if not qa.slices and not qa.fairness:
        out += ["No slice or fairness results (not validated, or nothing declared).", ""]
    eth = card.ethical_considerations
    out += ["## Ethical considerations", "", *_notes(eth.notes)]
    for g in eth.fairness:
        out.append(f"- {g.name}: {gate_status(g)}. {g.detail}")
    if eth.waivers:
        out += ["", "Waivers:"]
        out += [
            f'- {w.gate} waived by {w.approver} on {w.at:%Y-%m-%d}: "{w.reason}"'
            for w in eth.waivers
        ]
    out += ["", "## Caveats and recommendations", "", *_notes(card.caveats.caveats)]
    for title, text in (
        ("Limitations", card.caveats.limitations),
        ("Recommendations", card.caveats.recommendations),
    ):
        if text:
            out += [f"### {title}", "", *_notes(text)]
    if card.caveats.failed_gates:
        out += ["Failed gates:"]
        out += [f"- {g.name} ({gate_status(g)}): {g.detail}" for g in card.caveats.failed_gates]
        out.append("")
    if card.caveats.open_risks:
        out += ["Open risks:", "", "| id | severity | risk | owner | mitigation | scope |"]
        out.append("| --- | --- | --- | --- | --- | --- |")
        out += [
            f"| {r.id} | {r.severity} | {md_cell(r.title)} | {md_cell(r.owner)} | "
            f"{md_cell(r.mitigation)} | {r.scope} |"
            for r in card.caveats.open_risks
        ]
    else:
        out.append("No open risks in the register.")
    return "\n".join(out).rstrip() + "\n"


def card_html(card: ModelCard) -> str:
    """The card as one self-contained HTML page (a chart of the metrics' intervals)."""
    from markupsafe import Markup

    chart = _metrics_chart(card.metrics.validated)
    groups = {
        g.name: Markup(html)
        for number, g in enumerate(card.quantitative_analyses.fairness, start=2)
        if (html := _groups_chart(g, number)) is not None
    }
    return render_page(
        "card.html.j2",
        plots=chart is not None or bool(groups),
        title=f"Model card: {card.details.name} v{card.details.version}",
        card=card,
        details=details_rows(card),
        criterion=criterion_text(card),
        validation=validation_text(card),
        chart=Markup(chart or ""),
        group_charts=groups,
        num=num,
        status=gate_status,
        interval=interval,
    )


def details_rows(card: ModelCard) -> list[tuple[str, str]]:
    """The "Model details" section as (label, text) rows."""
    d = card.details
    frameworks = ", ".join(f"{k} {v}" for k, v in d.frameworks.items())
    classes = f" (classes: {', '.join(map(str, d.classes))})" if d.classes else ""
    dirty = {True: ", uncommitted changes", False: ", clean", None: ""}[d.git_dirty]
    code = (
        f"commit {d.git_commit}" + (f" on {d.git_branch}" if d.git_branch else "") + dirty
        if d.git_commit
        else "not recorded"
    )
    return [
        ("Name", d.name),
        (
            "Version",
            f"{d.version} ({d.stage}"
            + (
                f"; {', '.join(a for a in d.aliases if a != d.stage)}"
                if set(d.aliases) - {d.stage}
                else ""
            )
            + ")",
        ),
        ("Description", d.description or "-"),
        ("Author", f"{d.author}, {d.created_at:%Y-%m-%d %H:%M} UTC"),
        ("Approved by", ", ".join(d.approved_by) or "nobody yet"),
        ("Flavor", f"{d.flavor} ({frameworks}; Python {d.python})"),
        ("Task", d.task + classes),
        ("Archive", f"{d.digest} ({d.size:,} bytes)"),
        ("Run", d.run_id or "none"),
        ("Code", code),
    ]


def criterion_text(card: ModelCard) -> str:
    """The acceptance criterion and whether the latest validation met it."""
    use = card.intended_use
    if use.criterion is None:
        return "none recorded"
    met = {True: "met", False: "NOT met", None: "not judged yet"}[use.criterion_met]
    return f"{use.criterion} ({met} in the latest validation)"


def validation_text(card: ModelCard) -> str:
    """One line on the latest validation."""
    v = card.metrics.validation
    if v is None:
        return (
            f"Not validated yet: run shipyard validate {card.details.name} {card.details.version}."
        )
    against = f" against v{v.champion}" if v.champion is not None else " (no champion)"
    outcome = "passed" if v.passed else f"failed ({', '.join(v.failed)})"
    return f"Validation #{v.id} by {v.by} on {v.at:%Y-%m-%d %H:%M} UTC{against}: {outcome}."


def gate_status(g: GateLine) -> str:
    """``passed``, ``FAILED`` or ``FAILED, waived``."""
    if g.passed:
        return "passed"
    return "FAILED, waived" if g.waived else "FAILED"


def interval(m: MetricLine) -> str:
    """``[0.812, 0.861]`` or ``-``."""
    if m.ci_low is None or m.ci_high is None:
        return "-"
    return f"[{num(m.ci_low)}, {num(m.ci_high)}]"


def num(value: Any) -> str:
    """A number to 4 significant digits; anything else as text.

    >>> num(0.812345), num(None), num(12)
    ('0.8123', '-', '12')
    """
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def md_cell(value: Any) -> str:
    """Text for a Markdown table cell (pipes escaped, one line)."""
    return " ".join(str(value).split("\n")).replace("|", "\\|")


def _metric_row(m: MetricLine) -> str:
    gate = {True: "passed", False: "FAILED", None: "-"}[m.passed]
    return (
        f"| {md_cell(m.name)} | {num(m.value)} | {interval(m)} | {num(m.limit)} | "
        f"{num(m.champion)} | {gate} |"
    )


def _gate_md(g: GateLine) -> list[str]:
    out = [f"### {g.name}: {gate_status(g)}", ""]
    if g.detail:
        out += [g.detail, ""]
    if g.facts:
        out += [", ".join(f"{k} = {num(v)}" for k, v in g.facts.items()), ""]
    for t in g.tables:
        out += _table_md(t)
    return out


def _table_md(t: Table) -> list[str]:
    return [
        f"{t.title}:",
        "",
        "| " + " | ".join(md_cell(c) or " " for c in t.columns) + " |",
        "| " + " | ".join("---" for _ in t.columns) + " |",
        *("| " + " | ".join(md_cell(num(v)) for v in row) + " |" for row in t.rows),
        "",
    ]


def _notes(text: str) -> list[str]:
    return [text, ""] if text else []


def _metrics_chart(metrics: list[MetricLine]) -> str | None:
    """The validated metrics with their intervals (and limits), or ``None`` without any."""
    # "accept" judges one of the metrics again: its interval is already drawn.
    shown = [
        m for m in metrics if m.value is not None and m.ci_low is not None and m.name != "accept"
    ]
    if not shown:
        return None
    import plotly.graph_objects as go

    from shipyard.monitoring import figure_html

    fig = go.Figure(
        go.Scatter(
            x=[m.value for m in shown],
            y=[m.name for m in shown],
            mode="markers",
            name="value (95% interval)",
            error_x={
                "type": "data",
                "symmetric": False,
                "array": [(m.ci_high or m.value or 0) - (m.value or 0) for m in shown],
                "arrayminus": [(m.value or 0) - (m.ci_low or m.value or 0) for m in shown],
            },
        )
    )
    limits = [m for m in shown if m.limit is not None]
    if limits:
        fig.add_trace(
            go.Scatter(
                x=[m.limit for m in limits],
                y=[m.name for m in limits],
                mode="markers",
                marker={"symbol": "line-ns-open", "size": 18},
                name="limit",
            )
        )
    fig.update_layout(height=120 + 40 * len(shown), margin={"l": 120, "r": 20, "t": 20, "b": 40})
    return figure_html(fig, 1)


def _groups_chart(gate: GateLine, number: int) -> str | None:
    """The rates by group of a fairness gate's first table with ``*rate`` columns (bars)."""
    for t in gate.tables:
        rates = [
            i
            for i, c in enumerate(t.columns)
            if c.endswith("rate") and all(isinstance(r[i], int | float) for r in t.rows)
        ]
        if not rates or not t.rows:
            continue
        import plotly.graph_objects as go

        from shipyard.monitoring import figure_html

        groups = [str(r[0]) for r in t.rows]
        bars = [go.Bar(x=groups, y=[r[i] for r in t.rows], name=t.columns[i]) for i in rates]
        fig = go.Figure(bars)
        fig.update_layout(
            height=260,
            barmode="group",
            margin={"l": 50, "r": 20, "t": 20, "b": 40},
            yaxis_title="rate",
        )
        return figure_html(fig, number)
    return None
