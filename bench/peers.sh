#!/usr/bin/env bash
# Build the benchmark peers' own environments, kept out of Shipyard's dependencies.
#
#   bash bench/peers.sh            every peer
#   bash bench/peers.sh serving    only what bench/serving/run.py needs (MLflow, MLServer, wrk,
#                                  h2load)
#
# Creates (idempotently, re-running only fills in what is missing):
#   bench/.peers/venv            MLflow 3.17.2 + scikit-learn + pandas (whatever mlflow resolves)
#   bench/.peers/mlserver-venv   Seldon's MLServer 1.7.1 + mlserver-sklearn (Open Inference
#                                Protocol v2), with the MLflow venv's scikit-learn version so
#                                both load the same fitted pipeline. A venv of its own: MLServer
#                                pins FastAPI, uvicorn and pydantic ranges that must not move
#                                MLflow's.
#   bench/.peers/evidently-venv  Evidently 0.7.x with pandas pinned < 3 (0.7.x does not import
#                                under pandas 3, yet pip would happily install it beside pandas 3)
#   bench/.peers/mlflow-eval-venv  MLflow 3.17.2 + shap with pandas < 3 (mlflow.models.evaluate's
#                                SHAP step crashes on string columns under pandas 3)
#   wrk                          Debian's package, via apt-get, if `wrk` is not on PATH
#   h2load, nghttp               Debian's nghttp2-client, via apt-get, if `h2load` is not on
#                                PATH: the gRPC load generator (h2c) and its one-call check
#
# Packages are installed ONE at a time: a combined install made pip backtrack on these machines.
# Override the interpreter with PYTHON=/path/to/python3.11 bash bench/peers.sh
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PEERS="$HERE/.peers"
VENV="$PEERS/venv"
EVENV="$PEERS/evidently-venv"
MVENV="$PEERS/mlflow-eval-venv"
PYTHON="${PYTHON:-python3}"

MLFLOW_SPEC="mlflow==3.17.2"        # 3.18.0 cannot be installed here (a dependency is missing)
MSVENV="$PEERS/mlserver-venv"
MLSERVER_VERSION="1.7.1"
WHAT="${1:-all}"
case "$WHAT" in
    all | serving) ;;
    *)
        echo "[peers] usage: bash bench/peers.sh [all|serving]" >&2
        exit 2
        ;;
esac
EVIDENTLY_SPEC="evidently>=0.7,<0.8"
EVIDENTLY_PANDAS_SPEC="pandas>=2.1,<3"

log() { printf '\n[peers] %s\n' "$*" >&2; }

check_python() {
    local ver
    ver="$("$PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
    if [[ "$ver" != "3.11" ]]; then
        echo "[peers] need Python 3.11, $PYTHON is $ver (set PYTHON=...)" >&2
        exit 1
    fi
}

make_venv() {  # make_venv DIR
    local dir="$1"
    if [[ ! -x "$dir/bin/python" ]] || ! "$dir/bin/python" -c 'import sys' 2>/dev/null; then
        log "creating venv $dir"
        rm -rf "$dir"
        "$PYTHON" -m venv "$dir"
        "$dir/bin/python" -m pip install -qq --upgrade pip
    fi
}

# pip_one VENV SPEC [pip args...]: install one requirement unless already satisfied.
pip_one() {
    local dir="$1" spec="$2"
    shift 2
    if "$dir/bin/python" - "$spec" <<'EOF' 2>/dev/null; then
import sys
from importlib.metadata import version, PackageNotFoundError
from packaging.requirements import Requirement
req = Requirement(sys.argv[1])
try:
    sys.exit(0 if req.specifier.contains(version(req.name), prereleases=True) else 1)
except PackageNotFoundError:
    sys.exit(1)
EOF
        log "$spec already in $(basename "$dir")"
        return 0
    fi
    log "pip install $spec -> $(basename "$dir")"
    "$dir/bin/python" -m pip install -qq "$@" "$spec"
}

check_python
mkdir -p "$PEERS"

# --- MLflow serving peer -----------------------------------------------------------------
make_venv "$VENV"
pip_one "$VENV" packaging
pip_one "$VENV" "$MLFLOW_SPEC"
pip_one "$VENV" scikit-learn
pip_one "$VENV" pandas
pip_one "$VENV" cloudpickle
"$VENV/bin/python" -c 'import mlflow, sklearn, pandas, uvicorn' \
    || { echo "[peers] mlflow venv does not import" >&2; exit 1; }

# --- Seldon MLServer serving peer (Open Inference Protocol v2) ----------------------------
# The scikit-learn that fits the benchmark's model (the MLflow venv's) goes in first and stays
# a pip constraint, so mlserver-sklearn cannot move it: both peers unpickle the same pipeline.
make_venv "$MSVENV"
SKLEARN_VERSION="$(
    "$VENV/bin/python" -c "from importlib.metadata import version; print(version('scikit-learn'))"
)"
MSCONSTRAINTS="$MSVENV/peers-constraints.txt"
echo "scikit-learn==$SKLEARN_VERSION" > "$MSCONSTRAINTS"
pip_one "$MSVENV" packaging
pip_one "$MSVENV" "scikit-learn==$SKLEARN_VERSION"
pip_one "$MSVENV" "mlserver==$MLSERVER_VERSION" -c "$MSCONSTRAINTS"
pip_one "$MSVENV" "mlserver-sklearn==$MLSERVER_VERSION" -c "$MSCONSTRAINTS"
pip_one "$MSVENV" joblib -c "$MSCONSTRAINTS"
"$MSVENV/bin/python" -c 'import mlserver, mlserver_sklearn, sklearn, joblib, pandas' \
    || { echo "[peers] mlserver venv does not import" >&2; exit 1; }

if [[ "$WHAT" == "all" ]]; then
# --- Evidently drift peer ----------------------------------------------------------------
# A second venv with pandas < 3 installed first and kept as a pip constraint, so installing
# Evidently cannot pull pandas 3 in. Simpler than a --target overlay on PYTHONPATH.
make_venv "$EVENV"
CONSTRAINTS="$EVENV/peers-constraints.txt"
echo "$EVIDENTLY_PANDAS_SPEC" > "$CONSTRAINTS"
pip_one "$EVENV" packaging
pip_one "$EVENV" "$EVIDENTLY_PANDAS_SPEC"
pip_one "$EVENV" "$EVIDENTLY_SPEC" -c "$CONSTRAINTS"
"$EVENV/bin/python" -c 'import evidently, pandas; from evidently import Report; from evidently.presets import DataDriftPreset' \
    || { echo "[peers] evidently venv does not import" >&2; exit 1; }

# --- MLflow evaluation peer (mlflow.models.evaluate with SHAP) ----------------------------
# Its SHAP step crashes under pandas 3 on string columns, so it gets pandas < 3 as Evidently
# does, and shap (which MLflow's default evaluator uses for explanations).
make_venv "$MVENV"
MCONSTRAINTS="$MVENV/peers-constraints.txt"
echo "$EVIDENTLY_PANDAS_SPEC" > "$MCONSTRAINTS"
pip_one "$MVENV" packaging
pip_one "$MVENV" "$EVIDENTLY_PANDAS_SPEC"
pip_one "$MVENV" "$MLFLOW_SPEC" -c "$MCONSTRAINTS"
pip_one "$MVENV" scikit-learn -c "$MCONSTRAINTS"
pip_one "$MVENV" shap -c "$MCONSTRAINTS"
pip_one "$MVENV" cloudpickle -c "$MCONSTRAINTS"
"$MVENV/bin/python" -c 'import mlflow, shap, sklearn, pandas' \
    || { echo "[peers] mlflow evaluation venv does not import" >&2; exit 1; }
fi # all

# --- load generators: wrk (HTTP/1.1), h2load (gRPC over h2c) ------------------------------
apt_one() {  # apt_one COMMAND PACKAGE: install PACKAGE unless COMMAND is on PATH
    local cmd="$1" pkg="$2" sudo=""
    command -v "$cmd" >/dev/null 2>&1 && return 0
    [[ "$(id -u)" -ne 0 ]] && sudo="sudo"
    log "installing $pkg with apt-get"
    if ! $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$pkg" >/dev/null 2>&1
    then
        $sudo apt-get update -qq
        $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$pkg" >/dev/null
    fi
}
apt_one wrk wrk
apt_one h2load nghttp2-client

# --- Report ------------------------------------------------------------------------------
ver() { "$1/bin/python" -c "from importlib.metadata import version; print(version('$2'))"; }
cat <<EOF

Peers ready in $PEERS
  mlflow        $(ver "$VENV" mlflow)
  scikit-learn  $(ver "$VENV" scikit-learn)   (mlflow venv)
  pandas        $(ver "$VENV" pandas)   (mlflow venv)
  uvicorn       $(ver "$VENV" uvicorn)
  mlserver      $(ver "$MSVENV" mlserver), mlserver-sklearn $(ver "$MSVENV" mlserver-sklearn)
  scikit-learn  $(ver "$MSVENV" scikit-learn)   (mlserver venv, pandas $(ver "$MSVENV" pandas))
EOF
if [[ "$WHAT" == "all" ]]; then
    cat <<EOF
  evidently     $(ver "$EVENV" evidently)
  pandas        $(ver "$EVENV" pandas)   (evidently venv)
  shap          $(ver "$MVENV" shap)   (mlflow evaluation venv, pandas $(ver "$MVENV" pandas))
EOF
fi
cat <<EOF
  wrk           $(command -v wrk) ($(dpkg-query -W -f '${Version}' wrk 2>/dev/null || echo '?'))
  h2load        $(command -v h2load) ($(dpkg-query -W -f '${Version}' nghttp2-client 2>/dev/null || echo '?'))

MLflow serving (mlflow shells out to a bare 'uvicorn': the venv's bin must come first on PATH):
  export PATH="$VENV/bin:\$PATH"
  mlflow models serve -m /path/to/model --env-manager local -h 127.0.0.1 -p 5055

MLServer (a folder with settings.json and models/NAME/model-settings.json; bench/README.md):
  "$MSVENV/bin/mlserver" start FOLDER

Load generators:
  wrk -t1 -c8 -d10s -s post.lua http://127.0.0.1:5055/invocations
  h2load -t1 -c8 -m1 -D 10 -d body.grpc -H 'content-type: application/grpc' -H 'te: trailers' \
      http://127.0.0.1:8001/inference.GRPCInferenceService/ModelInfer
EOF
if [[ "$WHAT" == "all" ]]; then
    cat <<EOF

Evidently drift report:
  export EVIDENTLY_PY="$EVENV/bin/python"
  "\$EVIDENTLY_PY" your_drift_script.py
EOF
fi
