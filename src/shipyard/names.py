"""The rule for model names, checked by every package that takes one.

A model's name is a database key (registry), a URL segment (serving) and a folder and file
name of the prediction log (``model=churn/``, ``...+churn+3.wal``), so one rule holds for all
of them: 1-128 letters, digits, ``.``, ``_`` or ``-``, starting with a letter or digit (never
``/`` or ``+``). A bottom-level module, beside ``errors`` and ``settings``: it imports only
``shipyard.errors``.

>>> check_name("churn-v2")
'churn-v2'
"""

from __future__ import annotations

import re

from shipyard.errors import InvalidInput

#: ``\Z``, not ``$``: ``$`` also matches before a final newline, so ``"churn\n"`` would pass.
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}\Z")


def check_name(name: str) -> str:
    """``name`` if it is a valid model name; ``InvalidInput`` saying the rule otherwise."""
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise InvalidInput(
            f"Invalid model name {name!r}: use 1-128 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit."
        )
    return name


__all__ = ["NAME_RE", "check_name"]
