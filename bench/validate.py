"""Validation gates vs ``mlflow.models.evaluate`` on the same model and rows.

    python bench/validate.py [--rows 100000] [--repeats 3]

A loan-style pipeline (SimpleImputer + StandardScaler for 14 numeric columns, one with 1%
missing values; OneHotEncoder for 6 string categoricals, a 50-level ``state`` and ``gender``
among them; HistGradientBoostingClassifier) is trained on 50,000 rows; a second, smaller one is
the champion. Both sides get the same ``--rows`` eval rows (Parquet) and train the same models
from the same seeds, each in its own environment:

- **Shipyard** (this venv): ``shipyard.evaluation.run_gates`` with every gate but the timed
  serving-cost load (metrics with paired bootstrap intervals, acceptance criterion, slices,
  fairness by ``gender``, explanations on the raw features, schema, data checks, ONNX parity),
  candidate against champion. Registration is not timed.
- **MLflow** (``bench/.peers/mlflow-eval-venv``, made by ``bash bench/peers.sh``: MLflow 3.17.2
  with pandas < 3, since its SHAP step crashes on string columns under pandas 3):
  ``mlflow.models.evaluate(model_type="classifier")`` with the default evaluator, metrics and
  plots only (``log_model_explainability=False``), and again with its SHAP explainability on.

Runs alternate Shipyard / MLflow per repeat, each a fresh process; medians and the ratio of
medians are printed and saved to ``bench/results/validate.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
PEER = HERE / ".peers" / "mlflow-eval-venv" / "bin" / "python"
SEED = 7
NUMERIC = [f"num_{i}" for i in range(14)]
CATEGORICAL = ["state", "gender", "purpose", "home", "grade", "channel"]
TARGET = "defaulted"

# The code both environments run: the data and the models, from the same seeds.
COMMON = f"""
import numpy as np, pandas as pd
NUMERIC = {NUMERIC!r}
CATEGORICAL = {CATEGORICAL!r}
TARGET = {TARGET!r}
SEED = {SEED}

def make_data(n, seed):
    rng = np.random.default_rng(seed)
    num = rng.normal(size=(n, len(NUMERIC))) * rng.uniform(0.5, 20, len(NUMERIC))
    X = pd.DataFrame(num, columns=NUMERIC)
    X.loc[rng.random(n) < 0.01, "num_3"] = np.nan
    levels = {{
        "state": [f"S{{k:02d}}" for k in range(50)],
        "gender": ["f", "m"],
        "purpose": ["car", "home", "education", "business", "other"],
        "home": ["rent", "own", "mortgage"],
        "grade": list("ABCDEFG"),
        "channel": ["web", "branch", "phone", "partner"],
    }}
    for c in CATEGORICAL:
        X[c] = pd.Series(rng.choice(levels[c], size=n), dtype=object)
    z = num[:, 0] / 10 - 0.05 * np.nan_to_num(X["num_3"].to_numpy()) + 0.4 * np.sin(num[:, 5])
    z = z + X["grade"].map(dict(zip("ABCDEFG", np.linspace(-1, 1, 7)))).to_numpy()
    z = z + np.where(X["state"].isin(["S01", "S02", "S03"]), 0.7, 0.0)
    y = (z + rng.normal(scale=0.8, size=n) > 0).astype(int)
    return X, y

def make_model(max_iter):
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline, make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler
    pre = ColumnTransformer([
        ("num", make_pipeline(SimpleImputer(), StandardScaler()), NUMERIC),
        ("cat", OneHotEncoder(handle_unknown="ignore", sparse_output=False), CATEGORICAL),
    ])
    return Pipeline([("pre", pre),
                     ("clf", HistGradientBoostingClassifier(max_iter=max_iter, random_state=SEED))])

def models():
    X, y = make_data(50_000, SEED)
    return make_model(100).fit(X, y), make_model(30).fit(X, y), X, y
"""

SHIPYARD = (
    COMMON
    + """
import json, sys, time
from pathlib import Path
from shipyard import Client, Settings
from shipyard.config import ProjectConfig
from shipyard.evaluation import EvalInputs, run_gates

work, eval_path = Path(sys.argv[1]), sys.argv[2]
candidate, champion, X, y = models()
project = ProjectConfig.model_validate({"models": {"loan": {
    "accept": "roc_auc >= 0.70", "sensitive": ["gender"]}}})
client = Client(Settings(home=work / "home", user="alice"), project=project).open()
Xe_small, ye_small = make_data(5_000, SEED + 1)
for model in (champion, candidate):
    mv = client.register(model, name="loan", X_train=X, y_train=y, X_eval=Xe_small, y_eval=ye_small)
frame = pd.read_parquet(eval_path)
rows, target = frame.drop(columns=[TARGET]), frame[TARGET].to_numpy()
registry = client.registry
inputs = EvalInputs(
    rows=rows, target=target,
    candidate=registry.load("loan", 2), champion=registry.load("loan", 1),
    policy=registry.policy("loan"),
    candidate_archive=registry.open_archive("loan", 2),
    champion_archive=registry.open_archive("loan", 1),
    candidate_size=registry.get_version("loan", 2).size,
    champion_size=registry.get_version("loan", 1).size,
)
started = time.perf_counter()
report = run_gates(inputs, skip=frozenset({"serving_cost"}))
seconds = time.perf_counter() - started
print(json.dumps({
    "seconds": seconds,
    "passed": report.passed,
    "gates": [[g.name, g.passed, g.applicable] for g in report.gates],
    "gate_seconds": report.seconds,
    "explain": next((g.detail for g in report.gates if g.name == "explain"), None),
}))
"""
)

MLFLOW = (
    COMMON
    + """
import json, sys, time, warnings, logging
from pathlib import Path
import mlflow

class Said(logging.Handler):  # what MLflow logs about SHAP (it skips it with a log line)
    lines = []
    def emit(self, record):
        if "shap" in record.getMessage().lower():
            Said.lines.append(record.getMessage()[:200])

logging.getLogger("mlflow").addHandler(Said(level=logging.WARNING))
work, eval_path, shap_on = Path(sys.argv[1]), sys.argv[2], sys.argv[3] == "shap"
candidate, champion, X, y = models()
mlflow.set_tracking_uri(f"sqlite:///{work / 'mlflow.db'}")
frame = pd.read_parquet(eval_path)
with mlflow.start_run():
    info = mlflow.sklearn.log_model(candidate, name="model", serialization_format="cloudpickle")
    caught = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        started = time.perf_counter()
        result = mlflow.models.evaluate(
            info.model_uri, frame, targets=TARGET, model_type="classifier",
            evaluators=["default"],
            evaluator_config={"default": {"log_model_explainability": shap_on}},
        )
        seconds = time.perf_counter() - started
shap_logged = any("shap" in k.lower() for k in result.artifacts)
skipped = [str(w.message)[:160] for w in caught if "shap" in str(w.message).lower()]
skipped += Said.lines
print(json.dumps({"seconds": seconds, "metrics": len(result.metrics),
                  "artifacts": sorted(result.artifacts), "shap_logged": shap_logged,
                  "shap_warnings": skipped[:2]}))
"""
)


def run(python: str, script: str, *args: str) -> dict[str, Any]:
    """One fresh process; its last stdout line is its JSON result."""
    with tempfile.TemporaryDirectory() as work:
        started = time.perf_counter()
        proc = subprocess.run(
            [python, "-c", script, work, *args],
            capture_output=True,
            text=True,
            env={**os.environ, "PYTHONWARNINGS": "ignore", "MLFLOW_TRACKING_URI": ""},
            cwd=work,  # MLflow puts a run's artifacts in ./mlruns
            check=False,
        )
        wall = time.perf_counter() - started
    if proc.returncode != 0:
        return {"error": proc.stderr.strip().splitlines()[-3:], "process_seconds": wall}
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    result["process_seconds"] = wall
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    if not PEER.exists():
        sys.exit(f"{PEER} is missing: run `bash bench/peers.sh` first.")
    namespace: dict[str, Any] = {}
    exec(COMMON, namespace)  # the same data code both sides run
    eval_dir = Path(tempfile.mkdtemp())
    eval_path = eval_dir / "eval.parquet"
    X, y = namespace["make_data"](args.rows, SEED + 2)
    X.assign(**{TARGET: y}).to_parquet(eval_path)
    runs: dict[str, list[dict[str, Any]]] = {"shipyard": [], "mlflow": [], "mlflow+shap": []}
    for i in range(args.repeats):
        runs["shipyard"].append(run(sys.executable, SHIPYARD, str(eval_path)))
        runs["mlflow"].append(run(str(PEER), MLFLOW, str(eval_path), "metrics"))
        runs["mlflow+shap"].append(run(str(PEER), MLFLOW, str(eval_path), "shap"))
        print(
            f"round {i + 1}: " + ", ".join(f"{k} {v[-1].get('seconds')}" for k, v in runs.items())
        )
    summary: dict[str, Any] = {"rows": args.rows, "repeats": args.repeats, "systems": {}}
    for system, results in runs.items():
        ok = [r for r in results if "seconds" in r]
        summary["systems"][system] = {
            "median_seconds": statistics.median(r["seconds"] for r in ok) if ok else None,
            "runs": results,
        }
    ours = summary["systems"]["shipyard"]["median_seconds"]
    for peer in ("mlflow", "mlflow+shap"):
        theirs = summary["systems"][peer]["median_seconds"]
        if ours and theirs:
            summary[f"ratio_{peer}_over_shipyard"] = theirs / ours
    out = HERE / "results" / "validate.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(summary, indent=2, default=str))
    print(json.dumps({k: v for k, v in summary.items() if k != "systems"}, indent=2))
    for system, data in summary["systems"].items():
        print(f"{system:12s} median {data['median_seconds']}")
    print(f"saved {out}")


if __name__ == "__main__":
    main()
