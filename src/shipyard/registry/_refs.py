"""Parsing model references: ``churn``, ``churn@production``, ``churn:3``, ``churn/3``."""

from __future__ import annotations

import re
from dataclasses import dataclass

from shipyard.errors import InvalidInput
from shipyard.names import check_name

ALIAS_RE = re.compile(r"^[A-Za-z][A-Za-z0-9._-]{0,63}\Z")  # \Z: "$" lets "a\n" through

#: The alias served by default, the one promotions need an approval for.
PRODUCTION = "production"
STAGING = "staging"


@dataclass(frozen=True)
class ModelRef:
    """A model name plus either a version number or an alias (default alias: production)."""

    name: str
    version: int | None = None
    alias: str | None = None

    def __str__(self) -> str:
        if self.version is not None:
            return f"{self.name} v{self.version}"
        return f"{self.name}@{self.alias}"


def check_alias(alias: str) -> str:
    if not isinstance(alias, str) or not ALIAS_RE.match(alias):
        raise InvalidInput(
            f"Invalid alias {alias!r}: use 1-64 letters, digits, '.', '_' or '-', starting "
            "with a letter."
        )
    return alias


def parse_ref(ref: str, version: int | None = None) -> ModelRef:
    """Parse a reference; an explicit ``version`` wins over one in the string.

    >>> parse_ref("churn@staging")
    ModelRef(name='churn', version=None, alias='staging')
    >>> parse_ref("churn:3")
    ModelRef(name='churn', version=3, alias=None)
    """
    name, alias, ver = ref, None, None
    if "@" in ref:
        name, alias = ref.split("@", 1)
        check_alias(alias)
    else:
        for sep in (":", "/"):
            if sep in ref:
                name, raw = ref.split(sep, 1)
                if not raw.isdigit() or int(raw) < 1:
                    raise InvalidInput(
                        f"Invalid version {raw!r} in {ref!r}: versions are numbers from 1."
                    )
                ver = int(raw)
                break
    check_name(name)
    if version is not None:
        if version < 1:
            raise InvalidInput(f"Invalid version {version}: versions are numbers from 1.")
        return ModelRef(name, version=version)
    if ver is not None:
        return ModelRef(name, version=ver)
    return ModelRef(name, alias=alias or PRODUCTION)
