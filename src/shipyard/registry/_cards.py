"""The sections of a version's model card that a person writes (``shipyard card edit``): the
intended use, ethical considerations, caveats... Shipyard generates the rest of the card.

Each write is audited as ``card.edited`` with the new text; a Markdown file's ``## Heading``
blocks map to sections (``parse_card_markdown``), all written in one transaction.

>>> notes = CardNotes(store)  # doctest: +SKIP
>>> notes.set("churn", 3, "caveats", "Not for customers under 18.", actor="alice")  # doctest: +SKIP
>>> notes.get("churn", 3)["caveats"].text  # doctest: +SKIP
'Not for customers under 18.'
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select

from shipyard.audit import append_event
from shipyard.errors import InvalidInput
from shipyard.registry._queries import lock_model, version_row
from shipyard.store import Store, tables, to_entity
from shipyard.store.tables import utcnow

#: The sections a person fills in, in the card's order (Mitchell et al., "Model Cards for
#: Model Reporting", 2019, plus limitations and recommendations).
CARD_SECTIONS = (
    "overview",
    "intended_use",
    "out_of_scope_uses",
    "factors",
    "training_data",
    "evaluation_data",
    "ethical_considerations",
    "limitations",
    "caveats",
    "recommendations",
)

#: Longest text of one section, in characters.
MAX_SECTION_CHARS = 20_000


@dataclass(frozen=True)
class CardNote:
    """One written section of a version's model card: its text, and who wrote it when."""

    model_name: str
    version: int
    section: str
    text: str = field(repr=False)
    updated_at: datetime = field(repr=False)
    updated_by: str


class CardNotes:
    """The written model card sections of one ``Store``; every change is audited."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def get(self, name: str, version: int) -> dict[str, CardNote]:
        """The written sections of ``name`` v``version``, by section, in the card's order."""
        with self.store.read() as session:
            version_row(session, name, version)
            rows = session.scalars(
                select(tables.CardSection).where(
                    tables.CardSection.model_name == name, tables.CardSection.version == version
                )
            )
            found = {r.section: to_entity(CardNote, r) for r in rows}
        return {s: found[s] for s in CARD_SECTIONS if s in found}

    def set(self, name: str, version: int, section: str, text: str, *, actor: str) -> CardNote:
        """Write one section (replacing its text), audited as ``card.edited``."""
        return self.set_many(name, version, {section: text}, actor=actor)[check_section(section)]

    def set_many(
        self, name: str, version: int, sections: Mapping[str, str], *, actor: str
    ) -> dict[str, CardNote]:
        """Write several sections in one transaction (all or none), one ``card.edited``."""
        if not sections:
            raise InvalidInput("Nothing to write: give at least one section.")
        texts = {check_section(s): _check_text(s, t) for s, t in sections.items()}
        with self.store.write() as session:
            lock_model(session, name, actor=actor)
            version_row(session, name, version)
            now = utcnow()
            out: dict[str, CardNote] = {}
            for section, text in texts.items():
                row = session.get(tables.CardSection, (name, version, section))
                if row is None:
                    row = tables.CardSection(model_name=name, version=version, section=section)
                    session.add(row)
                row.text, row.updated_at, row.updated_by = text, now, actor
                out[section] = to_entity(CardNote, row)
            append_event(
                session,
                actor=actor,
                action="card.edited",
                subject=f"model:{name}/{version}",
                details={"sections": texts},
            )
        return out


def check_section(section: str) -> str:
    """``section`` (any case, spaces or dashes for underscores) if it is one of
    ``CARD_SECTIONS``; else ``InvalidInput`` listing them.

    >>> check_section("Ethical considerations")
    'ethical_considerations'
    >>> check_section("summary")
    Traceback (most recent call last):
    ...
    shipyard.errors.InvalidInput: 'summary' is not a model card section; write one of: overview, intended_use, out_of_scope_uses, factors, training_data, evaluation_data, ethical_considerations, limitations, caveats, recommendations.
    """  # noqa: E501
    key = re.sub(r"[^a-z0-9]+", "_", section.strip().lower()).strip("_")
    if key not in CARD_SECTIONS:
        raise InvalidInput(
            f"'{section}' is not a model card section; write one of: {', '.join(CARD_SECTIONS)}."
        )
    return key


def parse_card_markdown(markdown: str, *, source: str = "the file") -> dict[str, str]:
    """The sections of a Markdown text: each ``## Heading`` starts one (``## Intended use``
    is ``intended_use``); text before the first heading and ``#`` titles are ignored.

    >>> parse_card_markdown("# Churn\\n## Intended use\\nRetention offers.\\n## Caveats\\nUS only.")
    {'intended_use': 'Retention offers.', 'caveats': 'US only.'}
    """
    sections: dict[str, list[str]] = {}
    current: list[str] | None = None
    unknown: list[str] = []
    for line in markdown.splitlines():
        heading = re.match(r"^##\s+(.+?)\s*#*\s*$", line)
        if heading:
            title = heading.group(1)
            try:
                key = check_section(title)
            except InvalidInput:
                unknown.append(title)
                current = None
                continue
            if key in sections:
                raise InvalidInput(f"{source} has two '## {title}' sections; merge them.")
            current = sections[key] = []
        elif current is not None:
            current.append(line)
    if unknown:
        raise InvalidInput(
            f"{source} has heading(s) {', '.join(repr(u) for u in unknown)} that are not model "
            f"card sections; use ## headings among: {', '.join(_titles())}."
        )
    if not sections:
        raise InvalidInput(
            f"{source} has no '## Section' headings; use headings among: {', '.join(_titles())}."
        )
    return {key: "\n".join(lines).strip() for key, lines in sections.items()}


def section_title(section: str) -> str:
    """The heading of a section: ``intended_use`` → ``Intended use``.

    >>> section_title("out_of_scope_uses")
    'Out of scope uses'
    """
    return section.replace("_", " ").capitalize()


def _titles() -> list[str]:
    return [section_title(s) for s in CARD_SECTIONS]


def _check_text(section: str, text: str) -> str:
    text = (text or "").strip()
    if not text:
        raise InvalidInput(f"The text of section '{section}' is empty; write something.")
    if len(text) > MAX_SECTION_CHARS:
        raise InvalidInput(
            f"The text of section '{section}' has {len(text)} characters; the limit is "
            f"{MAX_SECTION_CHARS}."
        )
    return text
