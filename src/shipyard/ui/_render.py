"""Pages from the Jinja2 templates in ``ui/templates``: every value autoescaped, the page's
identity, CSRF token and navigation in the context, the CSRF cookie set when new."""

from __future__ import annotations

import functools
from typing import Any

import jinja2
from starlette.requests import Request
from starlette.responses import HTMLResponse

from shipyard.ui._session import CSRF_FIELD, csrf_token, ensure_csrf_cookie

#: The navigation bar: (label, path), in order.
NAV = (
    ("Models", "/ui/"),
    ("Approvals", "/ui/approvals"),
    ("Audit", "/ui/audit"),
    ("Trace a prediction", "/ui/trace"),
)


@functools.cache
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("shipyard.ui", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    from shipyard.ui._format import FILTERS

    env.filters.update(FILTERS)
    return env


def render(request: Request, template: str, *, status: int = 200, **context: Any) -> HTMLResponse:
    """Render ``templates/<template>`` for ``request`` with ``context`` plus ``identity`` (or
    ``None``), ``csrf_field``/``csrf_token`` for forms, ``nav`` and ``path``."""
    html = (
        environment()
        .get_template(template)
        .render(
            identity=getattr(request.state, "identity", None),
            csrf_field=CSRF_FIELD,
            csrf_token=csrf_token(request),
            nav=NAV,
            path=request.url.path,
            **context,
        )
    )
    response = HTMLResponse(html, status_code=status)
    ensure_csrf_cookie(request, response)
    return response
