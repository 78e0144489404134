"""Registry-event notifications: committed audit events sent through the alert channels.

Every registry change appends an audit event inside its write transaction; ``Store.write``
hands the events of a committed transaction to its listeners (never those of a rolled-back
one). A ``Notifier`` is such a listener: it sends the events that ``[[notify]]`` rules of
``shipyard.toml`` select, through the rules' channels, and stores each notification as an
alert (rule ``notify:<name>``, metric = the event), audited like any alert. A failing channel
is recorded and reported, never raised: the registry change is already committed.

Sending happens on a background thread of the notifier, so a stalled mail server or webhook
never holds the change, nor the web request or command that made it: the change returns as
soon as it is committed (tests/faults measure it). Each channel still gets at most
``NOTIFY_BUDGET`` (5 s) per event, retries included, whatever its own ``timeout`` and
``attempts`` (a hanging mail server with the defaults, 10 s x 3 attempts, would otherwise
keep the queue behind it for 33 s). ``Client.close()`` calls ``flush()``, so a command that
exits after a change still sends its notifications (waiting for them after its output); a
process killed before that loses the ones not sent yet (they are not queued durably).

.. code-block:: toml

    [[notify]]
    name = "deployments"                       # optional; default notify-<n>
    events = ["version.promoted", "version.rolled_back", "traffic.*", "rollout.*"]
    models = ["churn"]                         # optional; default every model
    channels = ["team"]                        # names of [channels.*] tables
    severity = "info"
"""

from __future__ import annotations

import fnmatch
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

from shipyard.alerting._alert import Alert
from shipyard.alerting._channel import Channel
from shipyard.alerting._registry import channels_from_project
from shipyard.alerting._rules import AlertRule
from shipyard.alerting._store import Alerts
from shipyard.config import NotifyTable, ProjectConfig
from shipyard.store import Store
from shipyard.store.tables import AlertRecord, AuditEvent

_log = logging.getLogger(__name__)

#: Registry events a ``[[notify]]`` rule can select (plus any ``traffic.*`` or ``rollout.*``
#: event).
REGISTRY_EVENTS = (
    "model.created",
    "version.registered",
    "version.approved",
    "version.promoted",
    "version.rolled_back",
    "version.archived",
    "version.artifacts_deleted",
)
TRAFFIC_PREFIX = "traffic."
#: Events of a model's traffic (policies, and rollouts stepping them) a rule may select.
_PREFIXES = (TRAFFIC_PREFIX, "rollout.")
#: Seconds each channel may spend delivering one registry event, retries included.
NOTIFY_BUDGET = 5.0


def _known(pattern: str) -> bool:
    if any(pattern.startswith(p) and len(pattern) > len(p) for p in _PREFIXES):
        return True
    return any(fnmatch.fnmatchcase(event, pattern) for event in REGISTRY_EVENTS)


def is_registry_event(action: str) -> bool:
    """Whether a ``[[notify]]`` rule may select this audit action."""
    return action in REGISTRY_EVENTS or action.startswith(_PREFIXES)


class NotifyRule(NotifyTable):
    """Which registry events (``fnmatch`` patterns) of which models go to which channels.

    The fields and their checks are the ``[[notify]]`` table's (``shipyard.config``).
    """

    def selects(self, action: str, model: str) -> bool:
        if not is_registry_event(action):
            return False
        if self.models and model not in self.models:
            return False
        return any(fnmatch.fnmatchcase(action, pattern) for pattern in self.events)


def notify_rules(project: ProjectConfig) -> list[NotifyRule]:
    """The ``[[notify]]`` rules of ``project``; an event no pattern can match is refused."""
    rules: list[NotifyRule] = []
    for i, table in enumerate(project.notify):
        unknown_events = [e for e in table.events if not _known(e)]
        if unknown_events:
            raise project.invalid(
                ("notify", i, "events"),
                f"unknown event(s) {unknown_events}. Use {', '.join(REGISTRY_EVENTS)}, "
                f"'traffic.*', 'rollout.*' or a pattern matching them.",
            )
        rules.append(NotifyRule.model_validate(table.model_dump()))
    return rules


def _model_version(subject: str) -> tuple[str, int]:
    """``model:churn/3`` → ``("churn", 3)``; ``model:churn`` → ``("churn", 0)``."""
    what = subject.removeprefix("model:")
    name, _, version = what.partition("/")
    return (name or subject or "*"), (int(version) if version.isdigit() else 0)


def _sentence(event: AuditEvent, model: str, version: int) -> str:
    d: dict[str, Any] = event.details or {}
    who, ref = event.actor, f"{model} v{version}"
    match event.action:
        case "version.registered":
            text = f"{who} registered {ref}."
        case "version.approved":
            text = f"{who} approved {ref} for production."
        case "version.promoted":
            was = f" (was v{d['previous']})" if d.get("previous") is not None else ""
            text = f"{who} promoted {ref} to {d.get('alias', 'production')}{was}."
        case "version.rolled_back":
            text = (
                f"{who} rolled {model}@{d.get('alias', 'production')} back from "
                f"v{d.get('from')} to v{d.get('to', version)}."
            )
        case "version.archived":
            text = f"{who} archived {ref}."
        case action if action.startswith("rollout."):
            what = action.removeprefix("rollout.").replace("_", " ")
            said = f": {d['message']}." if d.get("message") else "."
            text = f"Rollout #{d.get('rollout')} of {ref} {what} ({who}){said}"
        case _:
            text = f"{who}: {event.action} on {event.subject}."
    return f"{text} Reason: {event.reason}" if event.reason else text


def event_alert(event: AuditEvent, rule: NotifyRule) -> Alert:
    """The alert that tells channels about one committed registry event."""
    model, version = _model_version(event.subject)
    facts = {
        "Event": event.action,
        "Model": model if not version else f"{model} v{version}",
        "Actor": event.actor,
        "Audit event": f"#{event.seq}",
    }
    if event.reason:
        facts["Reason"] = event.reason
    facts.update({str(k): str(v) for k, v in (event.details or {}).items()})
    return Alert(
        rule=f"notify:{rule.name}",
        severity=rule.severity,
        model=model,
        version=version,
        metric=event.action,
        value=0.0,
        threshold=0.0,
        title=f"{event.action}: {model}" + (f" v{version}" if version else ""),
        message=_sentence(event, model, version),
        facts=facts,
    )


class Notifier:
    """A store listener sending the registry events that ``rules`` select.

    ``on_failure(record)`` is called for each notification that a channel did not deliver
    (the CLI prints it); by default it is logged. With ``background`` (the default) the
    notifications are sent by a thread of the notifier, in commit order, and the change
    returns at once; ``flush()`` waits until they are sent. Each channel gets at most
    ``budget`` seconds per event (retries included), whatever its own ``timeout`` and
    ``attempts``, so one hanging server delays the notifications behind it by seconds.
    """

    def __init__(
        self,
        store: Store,
        rules: list[NotifyRule],
        channels: Mapping[str, Channel],
        *,
        on_failure: Callable[[AlertRecord], None] | None = None,
        budget: float = NOTIFY_BUDGET,
        background: bool = True,
    ) -> None:
        self.store = store
        self.rules = rules
        self.channels = dict(channels)
        self.on_failure = on_failure
        self.budget = budget
        self.background = background
        self._queue: deque[tuple[AuditEvent, NotifyRule]] = deque()
        self._busy = 0  # notifications taken off the queue and not sent yet
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None

    def __call__(self, events: list[AuditEvent]) -> None:
        """Notify about ``events`` (committed already); never raises, and with ``background``
        returns without waiting for any channel."""
        selected: list[tuple[AuditEvent, NotifyRule]] = []
        for event in events:
            model, _ = _model_version(event.subject)
            selected.extend((event, r) for r in self.rules if r.selects(event.action, model))
        if not selected:
            return
        if not self.background:
            for event, rule in selected:
                self._send_logged(event, rule)
            return
        with self._cond:
            self._queue.extend(selected)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="shipyard-notify", daemon=True
                )
                self._thread.start()
            self._cond.notify_all()

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every queued notification is sent (or ``timeout`` seconds pass);
        True when none is left.

        >>> client.promote("churn", 3); client.notifier.flush()  # doctest: +SKIP
        True
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while self._queue or self._busy:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return False
                self._cond.wait(left)
        return True

    @property
    def pending(self) -> int:
        """Notifications queued or being sent."""
        with self._cond:
            return len(self._queue) + self._busy

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._queue:
                    self._cond.wait()
                event, rule = self._queue.popleft()
                self._busy += 1
            try:
                self._send_logged(event, rule)
            finally:
                with self._cond:
                    self._busy -= 1
                    self._cond.notify_all()

    def _send_logged(self, event: AuditEvent, rule: NotifyRule) -> None:
        try:
            self._send(event, rule)
        except Exception:  # a store or channel bug must not surface as a failed change
            _log.exception("Notification %s of event #%s failed", rule.name, event.seq)

    def _send(self, event: AuditEvent, rule: NotifyRule) -> None:
        alert_rule = AlertRule(
            name=f"notify:{rule.name}",
            metric=event.action,
            severity=rule.severity,
            cooldown="0m",  # every event is news: no cool-down
            channels=rule.channels,
        )
        (record,) = Alerts(self.store).raise_all(
            [(alert_rule, event_alert(event, rule))],
            self.channels,
            actor=event.actor,
            budget=self.budget,
        )
        if record.status != "sent":
            if self.on_failure is not None:
                self.on_failure(record)
            else:
                _log.warning("Notification %s was not delivered: %s", record.id, record.deliveries)


def attach_notifier(
    store: Store,
    project: ProjectConfig,
    *,
    on_failure: Callable[[AlertRecord], None] | None = None,
) -> Notifier | None:
    """Attach a ``Notifier`` for the ``[[notify]]`` rules of ``project`` to ``store``, once.

    Returns ``None`` when the project declares no ``[[notify]]`` rule; the store's existing
    notifier when it has one (so several clients on one store do not notify twice).
    """
    for listener in store.listeners:
        if isinstance(listener, Notifier):
            return listener
    if not project.notify:
        return None
    channels = channels_from_project(project)
    notifier = Notifier(store, notify_rules(project), channels, on_failure=on_failure)
    store.add_listener(notifier)
    return notifier
