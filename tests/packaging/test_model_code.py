"""The model's own code travels in its archive: found, stored, checked, put in place.

Each test writes the data scientist's modules into its own folder under a unique name and
imports them from there, as a notebook in that folder would; loading happens after the folder
and the modules are gone from ``sys.path`` and ``sys.modules``, as on another machine.
"""

from __future__ import annotations

import importlib
import io
import sys
import uuid
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LinearRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer

from shipyard import Client
from shipyard.audit import list_events
from shipyard.errors import IntegrityError, InvalidInput, ModelUnavailable, NotFound
from shipyard.packaging import open_archive, prepare_archive
from shipyard.packaging._code import collect_code
from shipyard.store import Store, sha256

FEATURES = """
import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin

import {helpers}


class AddRatio(BaseEstimator, TransformerMixin):
    def __init__(self, scale=1.0):
        self.scale = scale

    def fit(self, X, y=None):
        return self

    def transform(self, X):
        X = X.copy()
        X["ratio"] = {helpers}.ratio(X["a"], X["b"]) * self.scale
        return X


def log_abs(X):
    return np.log1p(np.abs(X))
"""

HELPERS_V1 = "def ratio(a, b):\n    return a / (b + 1)\n"
HELPERS_V2 = "def ratio(a, b):\n    return (a * 10) / (b + 1)\n"


@dataclass
class Project:
    """A folder of the user's modules on ``sys.path``, like a notebook's working folder."""

    folder: Path
    tag: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    tops: set[str] = field(default_factory=set)

    def name(self, base: str) -> str:
        return f"{base}_{self.tag}"

    def write(self, relative: str, source: str) -> Path:
        path = self.folder / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(source)
        self.tops.add(Path(relative).parts[0].removesuffix(".py"))
        importlib.invalidate_caches()
        return path

    def features(self, helpers_source: str = HELPERS_V1) -> tuple[ModuleType, ModuleType]:
        """``features_<tag>`` (a transformer, a function) importing ``helpers_<tag>``."""
        helpers, features = self.name("helpers"), self.name("features")
        self.write(f"{helpers}.py", helpers_source)
        self.write(f"{features}.py", FEATURES.format(helpers=helpers))
        return importlib.import_module(features), importlib.import_module(helpers)

    def forget(self) -> None:
        """As on another machine: the folder off ``sys.path``, its modules unimported."""
        while str(self.folder) in sys.path:
            sys.path.remove(str(self.folder))
        for name in [n for n in sys.modules if n.split(".")[0] in self.tops]:
            del sys.modules[name]
        importlib.invalidate_caches()


@pytest.fixture
def project(tmp_path: Path) -> Iterator[Project]:
    folder = tmp_path / "project"
    folder.mkdir()
    sys.path.insert(0, str(folder))
    proj = Project(folder)
    yield proj
    proj.forget()


def frame(n: int = 120, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = pd.DataFrame({"a": rng.normal(5, 2, n), "b": rng.uniform(0, 3, n)})
    y = 2 * X["a"].to_numpy() - X["b"].to_numpy() + rng.normal(0, 0.1, n)
    return X, y


def pipeline(features: ModuleType, X: pd.DataFrame, y: np.ndarray) -> object:
    model = make_pipeline(
        features.AddRatio(scale=2.0), FunctionTransformer(features.log_abs), LinearRegression()
    )
    return model.fit(X, y)


@pytest.fixture
def client(client_for: Callable[[str], Client]) -> Client:
    return client_for("alice")


@pytest.fixture(params=["sqlite"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    # The code's path does not depend on the database: SQLite only.
    return f"sqlite:///{tmp_path / 'shipyard.db'}"


def test_the_modules_the_pickle_names_and_their_imports_are_collected(project: Project) -> None:
    features, helpers = project.features()
    X, y = frame()
    code = collect_code(pipeline(features, X, y))
    assert code.modules == sorted([features.__name__, helpers.__name__])
    assert code.members == {
        f"code/{features.__name__}.py": Path(features.__file__ or "").read_bytes(),
        f"code/{helpers.__name__}.py": Path(helpers.__file__ or "").read_bytes(),
    }
    assert code.roots == [project.folder.resolve()]
    assert code.by_value == [] and code.needed
    # installed packages and the standard library are pinned by the lock, never copied
    assert "sklearn.pipeline" in code.libraries
    assert not any(m.startswith(("sklearn", "numpy")) for m in code.modules)


def test_a_model_of_installed_libraries_only_needs_no_code() -> None:
    X, y = frame()
    code = collect_code(LinearRegression().fit(X, y))
    assert code.members == {} and not code.needed


def test_a_model_holding_large_arrays_is_scanned_without_copying_them() -> None:
    from sklearn.neighbors import KNeighborsClassifier

    rng = np.random.default_rng(0)
    X = rng.normal(size=(50_000, 8))  # 3.2 MB: pickled as an out-of-band buffer
    model = KNeighborsClassifier().fit(X, rng.integers(0, 2, len(X)))
    code = collect_code(model)
    assert not code.needed and "sklearn.neighbors._classification" in code.libraries


def test_a_package_travels_with_its_init_and_relative_imports(
    project: Project, client: Client
) -> None:
    pkg = project.name("featpkg")
    project.write(f"{pkg}/__init__.py", "from .transforms import Scale\n")
    project.write(
        f"{pkg}/transforms.py",
        "from sklearn.base import BaseEstimator, TransformerMixin\n"
        "from . import util\n\n"
        "class Scale(BaseEstimator, TransformerMixin):\n"
        "    def fit(self, X, y=None):\n        return self\n"
        "    def transform(self, X):\n        return util.double(X)\n",
    )
    project.write(f"{pkg}/util.py", "def double(X):\n    return X * 2\n")
    project.write(f"{pkg}/unused.py", "raise RuntimeError('never imported')\n")
    module = importlib.import_module(pkg)
    X, y = frame()
    model = make_pipeline(module.Scale(), LinearRegression()).fit(X, y)
    expected = model.predict(X)

    mv = client.register(model, name="pkg", X_train=X, y_train=y, load_check=False)
    manifest = client.registry.open_archive("pkg", mv.version).manifest
    assert manifest.code_modules == [pkg, f"{pkg}.transforms", f"{pkg}.util"]
    assert f"code/{pkg}/__init__.py" in manifest.members
    assert manifest.format_version == 2

    project.forget()
    loaded = client.load("pkg", mv.version)
    np.testing.assert_array_equal(loaded.predict(X), expected)
    assert pkg not in sys.modules  # the user's name is left alone


def test_code_paths_add_files_and_package_folders(project: Project) -> None:
    features, _ = project.features()
    extra = project.write(project.name("extra") + ".py", "VALUE = 1\n")
    folder_pkg = project.name("plugins")
    project.write(f"{folder_pkg}/__init__.py", "")
    project.write(f"{folder_pkg}/sub/rules.py", "from .. import __name__ as parent\n")
    project.write(f"{folder_pkg}/__pycache__/junk.py", "")
    X, y = frame()
    model = pipeline(features, X, y)
    code = collect_code(model, [extra, project.folder / folder_pkg])
    assert f"code/{extra.stem}.py" in code.members
    assert f"code/{folder_pkg}/__init__.py" in code.members
    assert f"code/{folder_pkg}/sub/rules.py" in code.members
    assert not any("__pycache__" in m for m in code.members)

    with pytest.raises(InvalidInput, match=r"The code path '.*nowhere\.py' does not exist"):
        collect_code(model, [project.folder / "nowhere.py"])
    notes = project.write("notes.txt", "not code")
    with pytest.raises(InvalidInput, match=r"is not a Python source file \(\.py\) or a folder"):
        collect_code(model, [notes])


def test_a_missing_code_path_registers_nothing(project: Project, client: Client) -> None:
    features, _ = project.features()
    X, y = frame()
    with pytest.raises(InvalidInput, match=r"does not exist: pass a \.py file or a package folder"):
        client.register(
            pipeline(features, X, y), name="m", X_train=X, code_paths=["no/such/file.py"]
        )
    with pytest.raises(NotFound):
        client.registry.get_version("m", 1)


def test_registered_code_loads_anywhere_and_two_versions_keep_their_own(
    project: Project, client: Client
) -> None:
    features, helpers = project.features(HELPERS_V1)
    X, y = frame()
    first = pipeline(features, X, y)
    expected_1 = first.predict(X)
    v1 = client.register(first, name="feat", X_train=X, y_train=y)  # load check on

    project.write(f"{helpers.__name__}.py", HELPERS_V2)
    importlib.reload(helpers)
    second = pipeline(features, X, y)
    expected_2 = second.predict(X)
    v2 = client.register(second, name="feat", X_train=X, y_train=y, load_check=False)
    assert not np.allclose(expected_1, expected_2)

    project.forget()
    loaded_1, loaded_2 = client.load("feat", v1.version), client.load("feat", v2.version)
    np.testing.assert_allclose(loaded_1.predict(X), expected_1)
    np.testing.assert_allclose(loaded_2.predict(X), expected_2)
    step_1, step_2 = loaded_1.model.steps[0][1], loaded_2.model.steps[0][1]
    assert type(step_1).__module__ != type(step_2).__module__  # each version its own module
    assert features.__name__ not in sys.modules and helpers.__name__ not in sys.modules


def test_the_user_module_of_the_same_name_is_untouched_by_a_load(
    project: Project, client: Client
) -> None:
    features, _ = project.features(HELPERS_V1)
    X, y = frame()
    mv = client.register(pipeline(features, X, y), name="feat", X_train=X, load_check=False)
    loaded = client.load("feat", mv.version)
    loaded.predict(X)
    assert sys.modules[features.__name__] is features  # still the user's own module
    assert type(loaded.model.steps[0][1]) is not features.AddRatio


def test_classes_that_cannot_be_imported_by_name_go_by_value(client: Client) -> None:
    from sklearn.base import BaseEstimator, TransformerMixin

    class Shift(BaseEstimator, TransformerMixin):  # a local class, like a notebook's
        def fit(self, X: pd.DataFrame, y: object = None) -> Shift:
            return self

        def transform(self, X: pd.DataFrame) -> pd.DataFrame:
            return X + 1

    X, y = frame()
    model = make_pipeline(Shift(), FunctionTransformer(lambda X: X * 3), LinearRegression())
    model.fit(X, y)
    mv = client.register(model, name="byvalue", X_train=X, y_train=y)  # loads elsewhere
    manifest = client.registry.open_archive("byvalue", mv.version).manifest
    assert any(name.endswith("<locals>.Shift") for name in manifest.pickled_by_value)
    assert any("<lambda>" in name for name in manifest.pickled_by_value)
    assert manifest.format_version == 1  # no code members: older Shipyards read it
    np.testing.assert_allclose(client.load("byvalue", mv.version).predict(X), model.predict(X))


def test_a_module_that_cannot_be_found_is_refused_at_register_and_at_load(
    project: Project, client: Client, tmp_path: Path
) -> None:
    features, _ = project.features()
    X, y = frame()
    model = pipeline(features, X, y)
    Path(features.__file__ or "").unlink()  # e.g. renamed since the notebook imported it

    with pytest.raises(InvalidInput) as refused:
        client.register(model, name="lost", X_train=X, y_train=y)
    message = refused.value.message
    assert f"it needs the module '{features.__name__}'" in message
    assert "neither installed here nor in its archive" in message
    assert f"code_paths=['path/to/{features.__name__}.py']" in message
    assert "Nothing was registered" in message and "Traceback" not in message
    with pytest.raises(NotFound):
        client.registry.get_version("lost", 1)
    assert not list((tmp_path / "artifacts").rglob("*.zip"))
    with client.store.read() as session:
        assert not list_events(session, subject="model:lost")

    mv = client.register(model, name="lost", X_train=X, y_train=y, load_check=False)
    project.forget()
    with pytest.raises(ModelUnavailable) as unavailable:
        client.load("lost", mv.version)
    assert unavailable.value.message.startswith(
        f"lost v1 cannot be loaded: it needs the module '{features.__name__}'"
    )


def test_an_altered_code_member_is_refused(project: Project, client: Client, store: Store) -> None:
    features, helpers = project.features()
    X, y = frame()
    mv = client.register(pipeline(features, X, y), name="feat", X_train=X, load_check=False)
    data = store.artifacts.get(mv.archive_key)
    member = f"code/{helpers.__name__}.py"
    altered = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(altered, "w") as dst:
        for info in src.infolist():
            body = src.read(info)
            dst.writestr(
                info, body.replace(b"b + 1", b"b + 2") if info.filename == member else body
            )
    store.artifacts.put(mv.archive_key, altered.getvalue())

    with pytest.raises(IntegrityError, match="does not match the digest recorded"):
        client.load("feat", mv.version)
    # even with the registry's digest forged too, the member's own checksum refuses it
    forged = altered.getvalue()
    with pytest.raises(IntegrityError, match=f"The member '{member}' of feat v1 fails"):
        open_archive(forged, expected_digest=sha256(forged), label="feat v1")


def test_prepare_archive_records_the_code_in_the_manifest(project: Project) -> None:
    features, helpers = project.features()
    X, y = frame()
    prepared = prepare_archive(pipeline(features, X, y), X_train=X, y_train=y, load_check=False)
    assert prepared.code_modules == sorted([features.__name__, helpers.__name__])
    data = prepared.build(name="m", version=1, author="a", created_at=pd.Timestamp.now("UTC"))
    archive = open_archive(data, expected_digest=sha256(data), label="m v1")
    assert archive.manifest.code_modules == prepared.code_modules
    assert archive.manifest.members[f"code/{features.__name__}.py"].startswith("sha256:")
