"""``SessionRunner``: an onnxruntime session's ``run`` without its Python-side checks.

``InferenceSession.run`` checks every call in Python before it calls the C++ session: that
each graph input is in the feed (a list membership test per input, reading each input's
name and type from C++ every time), that no ``OrtValue`` belongs to another device, and that
WebGPU graph capture is off. For a model with twenty inputs and one row that is ~15 us of
a ~60 us call. ``OnnxPredictor`` always feeds every input as a numpy array on the CPU
provider, so none of those checks can fail there; the C++ session still refuses a missing or
mistyped input itself.

The C++ session is the private ``InferenceSession._sess`` (its ``run(output_names, feed,
run_options)``), so the runner falls back to the public ``run`` when the attribute is absent
or the call raises ``TypeError`` / ``AttributeError`` (another onnxruntime whose binding
differs), and keeps using the public one from then on.

>>> runner = SessionRunner(session)  # doctest: +SKIP
>>> labels, proba = runner.run(["label", "probabilities"], feed)  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

__all__ = ["SessionRunner"]

_Run = Callable[[Sequence[str], Mapping[str, Any], Any], list[Any]]


class SessionRunner:
    """Runs an ``onnxruntime.InferenceSession`` through its C++ session where it can."""

    def __init__(self, session: Any) -> None:
        self.session = session
        inner = getattr(session, "_sess", None)
        self._direct: _Run | None = getattr(inner, "run", None)

    @property
    def direct(self) -> bool:
        """Whether calls go straight to the C++ session (False: the public ``run``)."""
        return self._direct is not None

    def run(self, output_names: Sequence[str], feed: Mapping[str, Any]) -> list[Any]:
        """The outputs ``output_names`` for ``feed``, as ``InferenceSession.run`` returns them."""
        direct = self._direct
        if direct is not None:
            try:
                return direct(output_names, feed, None)
            except (TypeError, AttributeError):
                # A binding that takes other arguments: the public run from now on (it also
                # raises the usual error if the feed itself was wrong).
                self._direct = None
        outputs: list[Any] = self.session.run(output_names, feed)
        return outputs
