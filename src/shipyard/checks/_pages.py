"""Self-contained HTML pages (validation reports, model cards) from the Jinja2 templates in
``checks/templates``: every value autoescaped, the bundled plotly.js inlined once, no address
to load anything from."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import jinja2


@functools.cache
def _environment() -> jinja2.Environment:
    import jinja2

    return jinja2.Environment(
        loader=jinja2.PackageLoader("shipyard.checks", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render_page(template: str, *, plots: bool = False, **context: Any) -> str:
    """Render ``templates/<template>`` with ``context``; ``plots`` inlines plotly.js (the
    template places it with ``{{ plotly_js }}``, already safe).

    >>> "<html" in render_page("base.html.j2", title="<t>", body="")
    True
    """
    from markupsafe import Markup

    script = ""
    if plots:
        from shipyard.monitoring import plotly_js

        script = plotly_js()
    return _environment().get_template(template).render(plotly_js=Markup(script), **context)
