"""The web UI for data scientists, approvers and business owners: server-rendered pages
under ``/ui/`` (Jinja2, autoescaped; plotly.js and a small page script bundled, no CDN) and
the same content as JSON under ``/api/``, behind one set of roles (viewer, scientist,
approver, admin) checked on the server for every route.

It reads what the rest of Shipyard stored (``shipyard.views``) and acts through the registry
and alerting, exactly as the CLI does; it never reads a whole prediction log per request.
"""

from shipyard.ui._app import create_ui
from shipyard.ui._dispatch import with_ui

__all__ = ["create_ui", "with_ui"]
