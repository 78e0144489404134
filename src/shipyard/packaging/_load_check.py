"""The register-time load check: the archive loaded in a fresh Python process, elsewhere.

A model that needs code beyond installed packages (its own modules, classes pickled by value)
is loaded from its would-be archive bytes in a new interpreter (``sys.executable -P -c``) whose
working directory is an empty temporary folder and whose ``PYTHONPATH`` has lost the folders the
user's modules came from, as a server on another machine would load it; it then predicts on a
few training (or eval) rows, and the predictions must equal the ones in memory. A failure is one
sentence and nothing is registered.

The child starts as soon as the code is known and imports Shipyard and the model's libraries
while the parent profiles the data and exports ONNX, so most of its start-up is hidden.
"""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import numpy as np
import pandas as pd

from shipyard.errors import InvalidInput
from shipyard.packaging._archive import PreparedArchive
from shipyard.packaging._code import ModelCode

#: Seconds the fresh process may take to import, load and predict.
TIMEOUT_SECONDS = 300.0
#: Rows predicted on in the fresh process.
CHECK_ROWS = 3

_CHILD = "from shipyard.packaging._load_check import child_main; child_main()"
_SKIP = "load_check=False skips this check"


class LoadCheck:
    """A fresh interpreter waiting for an archive to load: ``start``, then ``run`` or ``close``.

    >>> check = LoadCheck.start(collect_code(model))  # doctest: +SKIP
    >>> try:  # doctest: +SKIP
    ...     check.run(prepared, X_train.head(3), model.predict(X_train.head(3)))
    ... finally:
    ...     check.close()
    """

    def __init__(
        self, process: subprocess.Popen[bytes], folder: tempfile.TemporaryDirectory[str]
    ) -> None:
        self.process = process
        self.folder = folder

    @classmethod
    def start(cls, code: ModelCode) -> LoadCheck:
        """Start the fresh process (it imports Shipyard and ``code.libraries`` meanwhile)."""
        folder = tempfile.TemporaryDirectory(prefix="shipyard-load-check-")
        work = Path(folder.name)
        (work / "cwd").mkdir()
        # The folder holding the ``shipyard`` package (not the facade: packaging sits below it).
        shipyard_root = str(Path(__file__).resolve().parents[2])
        argv = [shipyard_root, str(work / "result.pickle"), json.dumps(code.libraries)]
        out = (work / "output.txt").open("wb")
        try:
            process = subprocess.Popen(
                [sys.executable, "-P", "-c", _CHILD, *argv],
                cwd=work / "cwd",
                env=_clean_env(code.roots),
                stdin=subprocess.PIPE,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        finally:
            out.close()
        return cls(process, folder)

    def run(self, prepared: PreparedArchive, rows: pd.DataFrame, expected: np.ndarray) -> None:
        """Load ``prepared`` in the fresh process and predict ``rows``; raise ``InvalidInput``
        (one sentence, then "nothing was registered") unless it gives ``expected``."""
        data = prepared.build(
            name="load-check", version=1, author="shipyard", created_at=datetime.now(UTC)
        )
        work = Path(self.folder.name)
        assert self.process.stdin is not None
        try:
            pickle.dump((data, rows), self.process.stdin, protocol=5)
            self.process.stdin.close()
        except (BrokenPipeError, OSError):
            pass  # it died early: its output says why
        try:
            code = self.process.wait(timeout=TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired as exc:
            raise InvalidInput(
                f"Loading the model in a fresh Python process took over {TIMEOUT_SECONDS:.0f} s"
                f"; nothing was registered ({_SKIP})."
            ) from exc
        result_path = work / "result.pickle"
        if not result_path.exists():
            tail = (work / "output.txt").read_text(errors="replace").strip().splitlines()[-1:]
            raise InvalidInput(
                f"The model could not be loaded in a fresh Python process (exit code {code}: "
                f"{tail[0][:300] if tail else 'no output'}); nothing was registered ({_SKIP})."
            )
        result: dict[str, Any] = pickle.loads(result_path.read_bytes())  # our own child's
        if "error" in result:
            raise InvalidInput(f"{result['error']} Nothing was registered ({_SKIP}).")
        _compare(np.asarray(expected), np.asarray(result["predictions"]))

    def close(self) -> None:
        """Stop the process if it still runs, and remove its folder."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        if self.process.stdin is not None and not self.process.stdin.closed:
            self.process.stdin.close()
        self.folder.cleanup()


def _clean_env(roots: list[Path]) -> dict[str, str]:
    """This environment without the ``PYTHONPATH`` entries that import the user's modules."""
    env = dict(os.environ)
    drop = {os.path.realpath(root) for root in roots} | {os.path.realpath(os.getcwd())}
    kept = [
        entry
        for entry in env.get("PYTHONPATH", "").split(os.pathsep)
        if entry and os.path.realpath(entry) not in drop
    ]
    if kept:
        env["PYTHONPATH"] = os.pathsep.join(kept)
    else:
        env.pop("PYTHONPATH", None)
    return env


def _compare(expected: np.ndarray, got: np.ndarray) -> None:
    same = expected.shape == got.shape and (
        np.allclose(expected, got, rtol=1e-7, atol=0.0, equal_nan=True)
        if expected.dtype.kind in "fc" and got.dtype.kind in "fc"
        else bool(np.array_equal(expected, got))
    )
    if not same:
        first = next((i for i in range(min(len(expected), len(got))) if expected[i] != got[i]), 0)
        here = expected[first] if len(expected) else None
        there = got[first] if len(got) else None
        raise InvalidInput(
            f"The model predicts differently once loaded from its archive in a fresh Python "
            f"process (row {first}: {here!r} here, {there!r} there): a module it uses may have "
            "changed on disk since it was imported (restart the session and fit again), or it "
            f"depends on this session's state; nothing was registered ({_SKIP})."
        )


def child_main() -> None:
    """The fresh process: ``argv`` = Shipyard's folder, result file, libraries (JSON list)."""
    root, result_path, libraries = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
    if root not in sys.path:
        sys.path.insert(0, root)
    import importlib

    from shipyard.errors import ModelUnavailable, ShipyardError
    from shipyard.packaging._archive import open_archive
    from shipyard.packaging._loaded import LoadedModel, explain_load_error
    from shipyard.store import sha256

    for name in libraries:  # what unpickling will import anyway, while the parent works
        try:
            importlib.import_module(name)
        except Exception:  # the real load reports it, in context
            continue
    stdin: IO[bytes] = sys.stdin.buffer
    data, rows = pickle.load(stdin)  # sent by the parent process
    result: dict[str, Any]
    label = "The model"
    try:
        archive = open_archive(data, expected_digest=sha256(data), label=label)
        loaded = LoadedModel(archive, label=label)
        try:
            result = {"predictions": np.asarray(loaded.predict(rows))}
        except ShipyardError:
            raise
        except ModuleNotFoundError as exc:
            raise explain_load_error(
                exc, archive, label, failing="loads but cannot predict"
            ) from exc
        except Exception as exc:
            raise ModelUnavailable(
                f"{label} loads but cannot predict in a fresh Python process "
                f"({type(exc).__name__}: {str(exc)[:200]}): it depends on something of this "
                "session that its archive does not hold."
            ) from exc
    except ShipyardError as exc:
        result = {"error": exc.message}
    Path(result_path).write_bytes(pickle.dumps(result, protocol=5))
