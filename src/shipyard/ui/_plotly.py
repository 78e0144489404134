"""plotly.js for the pages, served from the package (``/ui/static/plotly.min.js``: the
monitoring report's bundled build, without its network defaults), and its stylesheet
(``/ui/static/plotly.css``).

plotly.js normally writes its CSS rules into a ``<style>`` element, which the UI's
Content-Security-Policy (``style-src 'self'``) forbids. It skips that when the page has an
element ``#plotly.js-style-global.no-inline-styles``: the pages link this stylesheet with that
id and class, so the rules come from this server instead. The rules are read out of the
bundled script itself, so they always match its version.
"""

from __future__ import annotations

import functools
import hashlib
import re

from fastapi import APIRouter
from starlette.responses import Response

router = APIRouter()

#: A year: the files change only with the package, and the URL carries its version.
CACHE = "public, max-age=31536000, immutable"
_RULES_START = '"X,X div"'
_PAIR = re.compile(
    r"""("(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')\s*:\s*("(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')"""
)


@functools.cache
def plotly_script() -> bytes:
    """The bundled plotly.js (read once per process)."""
    from shipyard.monitoring import plotly_js

    return plotly_js().encode("utf-8")


@functools.cache
def plotly_css() -> bytes:
    """The CSS rules plotly.js would inject, as a stylesheet (read from the script: its
    ``{"X,X div": "...", ...}`` table, ``X`` being ``.js-plotly-plot .plotly``)."""
    script = plotly_script().decode("utf-8")
    at = script.find(_RULES_START)
    if at < 0:
        raise RuntimeError("plotly.js changed: its table of CSS rules was not found")
    start = script.rfind("{", 0, at)
    end = script.index("}", at)
    rules = []
    for key, value in _PAIR.findall(script[start + 1 : end]):
        selector = re.sub("^,", " ,", key[1:-1])
        selector = selector.replace("X", ".js-plotly-plot .plotly").replace("Y", ".plotly-notifier")
        rules.append(f"{selector}{{{value[1:-1]}}}")
    return ("\n".join(rules) + "\n").encode("utf-8")


def version_tag() -> str:
    """A short digest of the script, appended to its URL so a new build is fetched anew."""
    return hashlib.sha256(plotly_script()).hexdigest()[:12]


def _file(body: bytes, media_type: str) -> Response:
    return Response(body, media_type=media_type, headers={"cache-control": CACHE})


@router.get("/ui/static/plotly.min.js", include_in_schema=False)
def plotly_min_js() -> Response:
    return _file(plotly_script(), "application/javascript")


@router.get("/ui/static/plotly.css", include_in_schema=False)
def plotly_stylesheet() -> Response:
    return _file(plotly_css(), "text/css")
