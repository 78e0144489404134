"""Reading an MLflow model directory without MLflow: the ``MLmodel`` file (YAML), the model of
its sklearn, xgboost or lightgbm flavor, its signature, input example and requirements.

Only the files MLflow writes are read, with the libraries that wrote them (PyYAML for
``MLmodel``; joblib/cloudpickle/pickle or skops for scikit-learn and LightGBM models; XGBoost's
own ``load_model``): MLflow itself is not needed to import a model directory.
"""

from __future__ import annotations

import importlib
import json
import pickle
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from shipyard.errors import InvalidInput, MissingDependency

#: The MLflow flavors Shipyard imports, in the order they are preferred when a model has several.
SUPPORTED_FLAVORS = ("sklearn", "xgboost", "lightgbm")
_SUPPORTED_TEXT = (
    "Shipyard imports sklearn, xgboost and lightgbm models (scikit-learn API), or a "
    "python_function model whose loader_module is mlflow.sklearn, mlflow.xgboost or "
    "mlflow.lightgbm"
)
_PYFUNC_LOADERS = {f"mlflow.{name}": name for name in SUPPORTED_FLAVORS}

#: MLflow column types -> the pandas dtype a frame column is cast to.
_COLUMN_DTYPES = {
    "boolean": "bool",
    "integer": "int32",
    "long": "int64",
    "float": "float32",
    "double": "float64",
    "string": "object",
    "datetime": "datetime64[ns]",
}


@dataclass(frozen=True)
class InputSpec:
    """One input of an MLflow signature: a named column (``dtype`` an MLflow column type) or
    a tensor (``dtype`` a numpy dtype, ``shape`` with -1 for any size)."""

    name: str | None
    dtype: str
    required: bool = True
    shape: tuple[int, ...] | None = None


@dataclass
class MlflowModel:
    """An MLflow model directory, read: its ``MLmodel`` and where its files are."""

    path: Path
    meta: dict[str, Any]
    label: str
    requirements: list[str] = field(default_factory=list)

    @property
    def flavors(self) -> dict[str, Any]:
        flavors = self.meta.get("flavors")
        return flavors if isinstance(flavors, dict) else {}

    @property
    def model_uuid(self) -> str | None:
        value = self.meta.get("model_uuid") or self.meta.get("model_id")
        return str(value) if value else None

    @property
    def run_id(self) -> str | None:
        value = self.meta.get("run_id")
        return str(value) if value else None

    def flavor(self) -> tuple[str, dict[str, Any]]:
        """The flavor Shipyard loads the model by, and its ``MLmodel`` entry.

        Raises ``InvalidInput`` (one sentence naming the flavors) when none is supported.
        """
        for name in SUPPORTED_FLAVORS:
            conf = self.flavors.get(name)
            if isinstance(conf, dict):
                return name, conf
        pyfunc = self.flavors.get("python_function")
        if isinstance(pyfunc, dict) and pyfunc.get("loader_module") in _PYFUNC_LOADERS:
            return _PYFUNC_LOADERS[pyfunc["loader_module"]], {**pyfunc, "_pyfunc": True}
        names = ", ".join(sorted(self.flavors)) or "none"
        loader = pyfunc.get("loader_module") if isinstance(pyfunc, dict) else None
        detail = f" (python_function loader_module {loader})" if loader else ""
        raise InvalidInput(
            f"The MLflow model {self.label} has the flavors {names}{detail}: {_SUPPORTED_TEXT}."
        )

    def load(self) -> Any:
        """The model object, loaded from its flavor's files (nothing of MLflow imported)."""
        name, conf = self.flavor()
        if name == "sklearn":
            path = self._file(conf.get("pickled_model") or conf.get("model_path"))
            fmt = conf.get("serialization_format") or _format_of(path)
            return _unpickle(path, fmt, conf.get("skops_trusted_types"), self.label)
        if name == "xgboost":
            return self._load_xgboost(conf)
        return self._load_lightgbm(conf)

    def _load_xgboost(self, conf: dict[str, Any]) -> Any:
        path = self._file(conf.get("data"))
        try:
            import xgboost
        except ImportError as exc:
            raise MissingDependency(
                f"The MLflow model {self.label} is an XGBoost model: pip install xgboost."
            ) from exc
        class_path = conf.get("model_class")
        if class_path is None:  # a python_function entry: the file says which estimator it is
            booster = xgboost.Booster(model_file=str(path))
            attrs = json.loads(booster.attr("scikit_learn") or "{}")
            kind = attrs.get("_estimator_type")
            class_path = {
                "classifier": "xgboost.sklearn.XGBClassifier",
                "regressor": "xgboost.sklearn.XGBRegressor",
            }.get(kind, "xgboost.core.Booster")
        cls = _class(class_path, self.label)
        if not hasattr(cls, "predict") or not hasattr(cls, "get_params"):
            raise InvalidInput(
                f"The MLflow model {self.label} is a raw {class_path}: Shipyard imports XGBoost "
                "models of the scikit-learn API (XGBClassifier, XGBRegressor); log one of those "
                "with mlflow.xgboost.log_model."
            )
        model = cls()
        model.load_model(str(path))
        return model

    def _load_lightgbm(self, conf: dict[str, Any]) -> Any:
        path = self._file(conf.get("data"))
        class_path = str(conf.get("model_class") or "")
        fmt = conf.get("serialization_format") or _format_of(path)
        if class_path.endswith("Booster") or fmt == "lgb":
            raise InvalidInput(
                f"The MLflow model {self.label} is a raw lightgbm Booster: Shipyard imports "
                "LightGBM models of the scikit-learn API (LGBMClassifier, LGBMRegressor); log "
                "one of those with mlflow.lightgbm.log_model."
            )
        return _unpickle(path, fmt, conf.get("skops_trusted_types"), self.label)

    def _file(self, relative: Any) -> Path:
        if not isinstance(relative, str) or not relative:
            raise InvalidInput(f"The MLmodel file of {self.label} does not name the model's file.")
        path = (self.path / relative).resolve()
        if not path.is_relative_to(self.path.resolve()) or not path.exists():
            raise InvalidInput(
                f"The MLflow model {self.label} names the file '{relative}', which is not in "
                "its directory."
            )
        return path

    # -- signature and example -------------------------------------------------------------
    def signature(self) -> list[InputSpec] | None:
        """The signature's inputs, or ``None`` without a signature."""
        sig = self.meta.get("signature")
        if not isinstance(sig, dict) or not sig.get("inputs"):
            return None
        try:
            raw = json.loads(sig["inputs"]) if isinstance(sig["inputs"], str) else sig["inputs"]
        except ValueError as exc:
            raise InvalidInput(f"The signature of {self.label} is not valid JSON.") from exc
        specs = []
        for item in raw:
            if item.get("type") == "tensor":
                tensor = item.get("tensor-spec") or {}
                specs.append(
                    InputSpec(
                        name=item.get("name"),
                        dtype=str(tensor.get("dtype")),
                        shape=tuple(int(s) for s in tensor.get("shape") or ()),
                    )
                )
            else:
                specs.append(
                    InputSpec(
                        name=item.get("name"),
                        dtype=str(item.get("type")),
                        required=bool(item.get("required", True)),
                    )
                )
        return specs

    def input_example(self) -> pd.DataFrame | np.ndarray | None:
        """The saved input example as a frame (or a 2-D array), or ``None``."""
        info = self.meta.get("saved_input_example_info")
        if not isinstance(info, dict) or not info.get("artifact_path"):
            return None
        path = self.path / str(info["artifact_path"])
        if not path.is_file():
            return None
        data = json.loads(path.read_text())
        kind = info.get("type")
        if kind == "dataframe":
            if info.get("pandas_orient", "split") == "split" and isinstance(data, dict):
                return pd.DataFrame(data["data"], columns=data["columns"])
            return pd.DataFrame(data)
        if kind == "ndarray":
            values = data.get("inputs") if isinstance(data, dict) else data
            array = np.asarray(values)
            return array if array.ndim == 2 else None
        return None


def read_model_dir(path: Path, *, label: str | None = None) -> MlflowModel:
    """Read the ``MLmodel`` file of the MLflow model directory ``path``.

    Raises ``InvalidInput`` when the directory or its ``MLmodel`` is missing or unreadable.
    """
    label = label or f"'{path}'"
    if not path.is_dir():
        raise InvalidInput(f"{label} is not a directory: pass an MLflow model directory or URI.")
    mlmodel = path / "MLmodel"
    if not mlmodel.is_file():
        raise InvalidInput(
            f"{label} has no MLmodel file: it is not an MLflow model directory (the folder "
            "mlflow.<flavor>.save_model wrote, or a models:/ or runs:/ URI)."
        )
    yaml = _yaml()
    try:
        meta = yaml.safe_load(mlmodel.read_text())
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"The MLmodel file of {label} is not valid YAML: {exc}.") from exc
    if not isinstance(meta, dict):
        raise InvalidInput(f"The MLmodel file of {label} is not a YAML mapping.")
    return MlflowModel(path=path, meta=meta, label=label, requirements=_requirements(path))


def _yaml() -> Any:
    try:
        import yaml
    except ImportError as exc:
        raise MissingDependency(
            "Reading MLflow models needs PyYAML: pip install 'shipyard[mlflow]'."
        ) from exc
    return yaml


_REQUIREMENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(\[[^\]]*\])?\s*([<>=!~].*)?$")


def _requirements(path: Path) -> list[str]:
    """The model's pip requirements: ``requirements.txt``, else ``conda.yaml``'s pip list."""
    lines: list[str] = []
    req = path / "requirements.txt"
    if req.is_file():
        lines = req.read_text().splitlines()
    elif (path / "conda.yaml").is_file():
        conda = _yaml().safe_load((path / "conda.yaml").read_text()) or {}
        for dep in conda.get("dependencies") or []:
            if isinstance(dep, dict) and isinstance(dep.get("pip"), list):
                lines.extend(str(item) for item in dep["pip"])
    out = []
    for line in lines:
        line = line.split("#", 1)[0].strip()
        if line and _REQUIREMENT.match(line):  # options (-r, --index-url) and URLs are left out
            out.append(line)
    return out


def _format_of(path: Path) -> str:
    return {".skops": "skops", ".lgb": "lgb"}.get(path.suffix, "cloudpickle")


def _unpickle(path: Path, fmt: str, trusted: Any, label: str) -> Any:
    if fmt == "skops":
        try:
            import skops.io
        except ImportError as exc:
            raise MissingDependency(
                f"The MLflow model {label} is saved in the skops format: pip install "
                "'shipyard[mlflow]' (or skops)."
            ) from exc
        try:
            return skops.io.load(path, trusted=list(trusted) if trusted else None)
        except Exception as exc:  # skops raises UntrustedTypesFoundException and others
            untrusted = skops.io.get_untrusted_types(file=path)
            if untrusted:
                raise InvalidInput(
                    f"The MLflow model {label} holds types skops does not trust "
                    f"({', '.join(untrusted)}): log it with skops_trusted_types listing them."
                ) from exc
            raise InvalidInput(f"The skops file of {label} cannot be loaded: {exc}.") from exc
    if fmt not in ("cloudpickle", "pickle"):
        raise InvalidInput(
            f"The MLflow model {label} is serialised as '{fmt}': Shipyard reads skops, "
            "cloudpickle and pickle files."
        )
    try:
        with path.open("rb") as fh:
            if fmt == "cloudpickle":
                try:
                    import cloudpickle
                except ImportError:
                    return pickle.load(fh)
                return cloudpickle.load(fh)
            return pickle.load(fh)
    except ModuleNotFoundError as exc:
        raise MissingDependency(
            f"The MLflow model {label} needs the module '{exc.name}', which is not installed "
            "here: install the model's requirements first."
        ) from exc
    except (pickle.UnpicklingError, EOFError, AttributeError, ValueError) as exc:
        raise InvalidInput(f"The model file of {label} cannot be unpickled: {exc}.") from exc


def _class(path: str, label: str) -> Any:
    module, _, name = path.rpartition(".")
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as exc:
        raise InvalidInput(
            f"The MLflow model {label} names the class {path}, which cannot be imported here."
        ) from exc


def frame_for(
    specs: list[InputSpec] | None, data: pd.DataFrame | np.ndarray, *, what: str
) -> pd.DataFrame | np.ndarray:
    """``data`` (the input example or a sample) shaped and typed as the signature says: the
    signature's columns in its order, each cast to its MLflow type; a tensor as a 2-D array."""
    if specs is None:
        return data
    if specs[0].dtype and specs[0].shape is not None:  # a tensor signature
        if len(specs) != 1 or len(specs[0].shape) != 2:
            raise InvalidInput(
                f"The signature takes {len(specs)} tensor(s) of shape "
                f"{list(specs[0].shape)}: Shipyard imports models of one 2-D input."
            )
        array = data.to_numpy() if isinstance(data, pd.DataFrame) else np.asarray(data)
        if array.ndim != 2 or (specs[0].shape[1] not in (-1, array.shape[1])):
            raise InvalidInput(
                f"{what} has shape {list(array.shape)}; the signature takes {list(specs[0].shape)}."
            )
        return array.astype(specs[0].dtype)
    if any(s.name is None for s in specs):
        raise InvalidInput("The signature has unnamed columns: Shipyard needs column names.")
    if not isinstance(data, pd.DataFrame):
        data = pd.DataFrame(data, columns=[s.name for s in specs])
    names = [str(s.name) for s in specs]
    missing = [n for n in names if n not in data.columns]
    if missing:
        raise InvalidInput(f"{what} lacks the signature's columns {', '.join(missing)}.")
    out = data[names].copy()
    for spec in specs:
        dtype = _COLUMN_DTYPES.get(spec.dtype)
        if dtype is None:
            raise InvalidInput(
                f"The signature's column '{spec.name}' is of MLflow type '{spec.dtype}': "
                "Shipyard imports numbers, booleans, strings and datetimes."
            )
        col = out[str(spec.name)]
        try:
            if dtype.startswith("int") and col.isna().any():
                out[str(spec.name)] = col.astype("float64")  # a gap: NaN, as numpy holds it
            elif dtype == "object":
                out[str(spec.name)] = col.astype(object).where(col.notna(), None)
            elif dtype.startswith("datetime"):
                out[str(spec.name)] = pd.to_datetime(col)
            else:
                out[str(spec.name)] = col.astype(np.dtype(dtype))
        except (TypeError, ValueError) as exc:
            raise InvalidInput(
                f"Column '{spec.name}' of {what} cannot be read as MLflow type "
                f"'{spec.dtype}': {exc}."
            ) from exc
    return out
