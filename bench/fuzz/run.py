"""Coverage-guided fuzzing (atheris, libFuzzer) of what an attacker controls: archive bytes up
to the point a model would be unpickled, and request bodies up to the rows a model scores.

    bash bench/fuzz/setup.sh                      # once: atheris in bench/fuzz/.venv
    python bench/fuzz/run.py                      # both targets, 60 s each
    python bench/fuzz/run.py --seconds 600 request

A target passes when every input either decodes or is refused with a ``ShipyardError`` (the
one-sentence 4xx the server answers); any other exception, a hang or a crash is a finding,
and libFuzzer writes the input that caused it to ``bench/fuzz/findings/<target>/``.

Targets:

- ``archive``: ``packaging.open_archive`` (zip directory, manifest, member checksums against
  a digest that matches, so everything past the digest is reached) and ``read_manifest``;
  never the unpickling itself, which runs the archive's code by design and is guarded by the
  registry's digest (tests/security/test_archives.py).
- ``request``: the request decoders of every HTTP protocol the server speaks: the Open
  Inference Protocol's JSON and binary tensor bodies (``Inference-Header-Content-Length``),
  plain JSON records and split forms, MLflow's four JSON forms and CSV, gzip/deflate bodies.

Each target runs in a process of its own (libFuzzer exits the process when done); this
driver shows their progress and prints runs, runs/s, corpus size and findings per target.
The fuzzed code is imported instrumented, its dependencies (pandas, numpy, pyarrow...) are
not: coverage guides the fuzzer through Shipyard's own branches.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import re
import subprocess
import sys
import time
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
VENV_SITE = HERE / ".venv" / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}"
TARGETS = ("archive", "request")


def _atheris():  # type: ignore[no-untyped-def]
    sys.path.insert(0, str(VENV_SITE / "site-packages"))
    sys.path.insert(0, str(ROOT / "src"))
    try:
        import atheris
    except ImportError:
        sys.exit("atheris is not installed: run 'bash bench/fuzz/setup.sh' first.")
    return atheris


# -- seeds ---------------------------------------------------------------------------------


def _seed_archive(input_schema: dict[str, object] | None = None) -> bytes:
    """A small archive of the current format: manifest and members with their checksums."""
    import hashlib
    import json

    members = {
        "model/model.joblib": b"\x80\x04N.",  # pickle of None: never loaded by the target
        "reference_profile.json": b'{"inputs": {}}',
        "requirements.lock": b"# python 3.11\nnumpy==2.0.0\n",
    }
    manifest = {
        "format_version": 1,
        "name": "churn",
        "version": 1,
        "author": "alice",
        "created_at": "2026-01-01T00:00:00+00:00",
        "flavor": "sklearn",
        "frameworks": {"scikit-learn": "1.5.0"},
        "python": "3.11.7",
        "task": "classification",
        "classes": ["churn", "stay"],
        "input_kind": "frame",
        "input_schema": input_schema
        or {"columns": [{"name": "age", "dtype": "integer", "nullable": False}]},
        "output_schema": {},
        "metrics": {},
        "members": {k: "sha256:" + hashlib.sha256(v).hexdigest() for k, v in members.items()},
    }
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        zf.writestr("manifest.json", json.dumps(manifest))
        for name, data in members.items():
            zf.writestr(name, data)
    return out.getvalue()


REQUEST_SEEDS = [
    b'\x00{"records": [{"age": 40, "income": 52000.5, "plan": "pro"}]}',
    b'\x01{"columns": ["age", "plan"], "data": [[40, "pro"], [51, null]]}',
    b'\x02{"inputs": [{"name": "age", "shape": [2], "datatype": "INT64", "data": [40, 51]},'
    b' {"name": "plan", "shape": [2], "datatype": "BYTES", "data": ["pro", "basic"]}]}',
    b'\x03{"inputs": [{"name": "age", "shape": [1], "datatype": "FP64",'
    b' "parameters": {"binary_data_size": 8}}]}' + b"\x00" * 8,
    b'\x04{"dataframe_split": {"columns": ["age"], "data": [[1]]}}',
    b'\x04{"dataframe_records": [{"age": 1}]}',
    b'\x04{"instances": [[1, "pro"]]}',
    b'\x04{"inputs": {"age": [1, 2]}}',
    b"\x05age,plan\n40,pro\n51,\n",
    b"\x06\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03\xabV**JM\xce/J)V\xb2R\x88\x8e\xad\x05\x00",
]


# -- targets -------------------------------------------------------------------------------


def _archive_target(atheris):  # type: ignore[no-untyped-def]
    import pydantic  # noqa: F401 - the dependencies load uninstrumented

    with atheris.instrument_imports(include=["shipyard"]):
        from shipyard.errors import ShipyardError
        from shipyard.packaging import open_archive, read_manifest
        from shipyard.store import sha256

    def one(data: bytes) -> None:
        try:
            archive = open_archive(data, expected_digest=sha256(data), label="fuzz v1")
            archive.schema  # noqa: B018 - the manifest's schema is parsed on use
        except ShipyardError:
            pass
        with contextlib.suppress(ShipyardError):
            read_manifest(io.BytesIO(data), label="fuzz v1")

    return one, [_seed_archive()]


def _request_target(atheris):  # type: ignore[no-untyped-def]
    import numpy  # noqa: F401 - the dependencies load uninstrumented
    import orjson  # noqa: F401
    import pandas  # noqa: F401

    with atheris.instrument_imports(include=["shipyard"]):
        from shipyard.errors import ShipyardError
        from shipyard.serving import _inputs, _v2, _v2_http

    columns = ["age", "income", "tenure", "plan"]
    mlflow_keys = ("dataframe_split", "dataframe_records", "instances", "inputs")

    def mlflow(data: object) -> object:
        keys = [k for k in mlflow_keys if isinstance(data, dict) and k in data]
        if len(keys) != 1:
            return None
        assert isinstance(data, dict)
        value = data[keys[0]]
        if keys[0] == "dataframe_split" and isinstance(value, dict):
            return _inputs.rows_from_split(value.get("columns"), value.get("data"))
        if keys[0] == "dataframe_records":
            return _inputs.rows_from_records(value)
        if keys[0] == "inputs" and isinstance(value, dict):
            return _inputs.frame_from_columns(value)
        return _inputs.rows_from_rows(value, columns, where=keys[0])

    def one(data: bytes) -> None:
        if not data:
            return
        kind, body = data[0] % 7, data[1:]
        try:
            if kind == 0:
                parsed = _inputs.parse_json(body)
                if isinstance(parsed, dict):
                    rows = _inputs.rows_from_records(parsed.get("records"))
                    rows.frame()
            elif kind == 1:
                parsed = _inputs.parse_json(body)
                if isinstance(parsed, dict):
                    _inputs.rows_from_split(parsed.get("columns"), parsed.get("data")).frame()
            elif kind in (2, 3):
                size = None
                if kind == 3:  # binary: the JSON part's length is the first '}' that closes it
                    end = body.rfind(b"}") + 1
                    size = _v2_http.header_length(str(end), len(body)) if end else None
                infer = _v2_http.parse_request(body, size)
                _v2.request_rows(infer, columns)
            elif kind == 4:
                mlflow(_inputs.parse_json(body))
            elif kind == 5:
                _inputs.frame_from_csv(body)
            else:
                _inputs.parse_json(_inputs._decompress(body, "gzip", 1 << 20))
        except ShipyardError:
            pass

    return one, REQUEST_SEEDS


def _fuzz(target: str, seconds: int) -> None:
    """Run one target in this process until libFuzzer's time is up (it exits the process)."""
    atheris = _atheris()
    one, seeds = {"archive": _archive_target, "request": _request_target}[target](atheris)
    corpus = HERE / "corpus" / target
    findings = HERE / "findings" / target
    corpus.mkdir(parents=True, exist_ok=True)
    findings.mkdir(parents=True, exist_ok=True)
    for i, seed in enumerate(seeds):
        (corpus / f"seed-{i}").write_bytes(seed)
    args = [
        sys.argv[0],
        str(corpus),
        f"-max_total_time={seconds}",
        "-timeout=10",
        "-rss_limit_mb=3072",
        f"-artifact_prefix={findings}/",
        "-print_final_stats=1",
    ]
    atheris.Setup(args, one)
    atheris.Fuzz()


_STATS = re.compile(
    r"stat::(number_of_executed_units|average_exec_per_sec|new_units_added):\s*(\d+)"
)


def _drive(targets: list[str], seconds: int) -> int:
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    console = Console()
    results: dict[str, dict[str, str]] = {}
    with Progress(
        TextColumn("{task.description}"), BarColumn(), TimeRemainingColumn(), console=console
    ) as progress:
        for target in targets:
            task = progress.add_task(f"fuzzing {target}", total=seconds)
            log = HERE / "findings" / f"{target}.log"
            log.parent.mkdir(parents=True, exist_ok=True)
            with log.open("w") as out:
                process = subprocess.Popen(
                    [sys.executable, __file__, "--child", target, "--seconds", str(seconds)],
                    stdout=out,
                    stderr=subprocess.STDOUT,
                )
                start = time.monotonic()
                while process.poll() is None:
                    progress.update(task, completed=min(seconds, time.monotonic() - start))
                    time.sleep(0.5)
                progress.update(task, completed=seconds)
            text = log.read_text(errors="replace")
            stats = dict(_STATS.findall(text))
            crashed = process.returncode != 0 or "ERROR: libFuzzer" in text
            results[target] = {
                "runs": stats.get("number_of_executed_units", "?"),
                "runs/s": stats.get("average_exec_per_sec", "?"),
                "new coverage units": stats.get("new_units_added", "?"),
                "findings": "yes, see " + str(log) if crashed else "none",
            }
    for target, row in results.items():
        console.print(f"[bold]{target}[/]: " + ", ".join(f"{k} {v}" for k, v in row.items()))
    return 1 if any(r["findings"] != "none" for r in results.values()) else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("targets", nargs="*", help=f"some of {', '.join(TARGETS)} (default: all)")
    parser.add_argument("--seconds", type=int, default=60, help="time per target")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        sys.argv = [sys.argv[0]]
        _fuzz(args.child, args.seconds)
        return
    unknown = [t for t in args.targets if t not in TARGETS]
    if unknown:
        parser.error(f"unknown target(s) {unknown}; choose from {', '.join(TARGETS)}")
    sys.exit(_drive(args.targets or list(TARGETS), args.seconds))


if __name__ == "__main__":
    main()
