"""Shared fixtures: every store test runs on a real SQLite file and on the real PostgreSQL.

PostgreSQL is at ``SHIPYARD_TEST_PG`` (default 127.0.0.1:5432, user postgres, database test).
Each test gets its own schema there. Without the server, PostgreSQL cases are skipped, except
under ``CI=true`` where they fail.
"""

from __future__ import annotations

import contextlib
import os
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
import pytest
import sqlalchemy as sa

from churn_data import churn_pipeline, labelled_churn
from gates_off import NO_GATES
from shipyard import Client, Settings
from shipyard.store import Store

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from spark_cluster import SparkStandalone

# The S3 servers (SeaweedFS, moto) and the ``object_store_url`` fixture: tests/object_stores.py
pytest_plugins = ["object_stores"]

PG_URL = os.environ.get("SHIPYARD_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
_pg_error: str | None = None


def _pg_available() -> bool:
    global _pg_error
    try:
        engine = sa.create_engine(PG_URL, connect_args={"connect_timeout": 3})
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
        engine.dispose()
        return True
    except Exception as exc:  # any driver or connection failure
        _pg_error = str(exc).splitlines()[0]
        return False


_PG_OK = _pg_available()


def require_pg() -> None:
    if _PG_OK:
        return
    message = f"PostgreSQL at {PG_URL} is not reachable: {_pg_error}"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message + " (CI=true: PostgreSQL is required)")
    pytest.skip(message)


@contextlib.contextmanager
def _pg_schema() -> Iterator[str]:
    """A URL whose search_path is a fresh, private schema, dropped afterwards (on new
    connections: the first ones may have died in a restart of PostgreSQL)."""
    require_pg()
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(PG_URL)
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    admin.dispose()
    try:
        yield f"{PG_URL}?options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture
def pg_schema_url() -> Iterator[str]:
    """A URL whose search_path is a fresh, private schema (dropped afterwards)."""
    with _pg_schema() as url:
        yield url


@pytest.fixture(scope="module")
def pg_module_url() -> Iterator[str]:
    """``pg_schema_url`` for a whole module (servers started once per module share it)."""
    with _pg_schema() as url:
        yield url


#: Modules on the Spark standalone cluster: ``pytest -n 2 --dist loadfile`` sends them to one
#: worker as one unit (``pytest_xdist_make_scheduler``), so one cluster and one session serve
#: them all instead of one per worker (each five JVMs on two cores).
SPARK_MODULES = (
    "tests/batch/test_score_engines.py",
    "tests/batch/test_score_spark.py",
    "tests/batch/test_spark_submit.py",
    "tests/batch/test_three_paths.py",
    "tests/monitoring/test_engines.py",
    "tests/monitoring/test_spark_engine.py",
)
#: The longest units, started first so that neither worker is left with one at the end.
LONGEST_FIRST = (
    "tests/deploy/test_env_create.py",
    *SPARK_MODULES,
    "tests/test_loop_end_to_end.py",
    "tests/test_demo.py",
    "tests/importing/test_mlflow_server_import.py",
)


def _module(nodeid: str) -> str:
    return nodeid.split("::", 1)[0]


def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> object | None:
    """``--dist loadfile``, with the Spark modules as one unit (``SPARK_MODULES``), handed out
    in collection order (``LONGEST_FIRST`` leads it) rather than by number of tests."""
    if config.getvalue("dist") != "loadfile":
        return None
    config.option.loadscopereorder = False
    from xdist.scheduler import LoadFileScheduling

    class SparkTogether(LoadFileScheduling):
        def _split_scope(self, nodeid: str) -> str:
            module = _module(nodeid)
            return "spark" if module in SPARK_MODULES else module

    return SparkTogether(config, log)  # type: ignore[arg-type]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The longest modules first (``LONGEST_FIRST``), so that two workers end together.

    Tests of a module marked ``sqlite_only`` keep only their SQLite case of ``db_url``:
    modules whose subject is above the store (CLI wording, gates, UI pages) spend half their
    time on PostgreSQL otherwise and find nothing there the store's, registry's, serving's
    and the end-to-end loop's PostgreSQL cases do not."""
    rank = {module: i for i, module in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(_module(item.nodeid), len(rank)))  # stable
    kept, dropped = [], []
    for item in items:
        params = getattr(getattr(item, "callspec", None), "params", {})
        if params.get("db_url") == "postgresql" and item.get_closest_marker("sqlite_only"):
            dropped.append(item)
        else:
            kept.append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'shipyard.db'}"
    url: str = request.getfixturevalue("pg_schema_url")
    return url


@pytest.fixture
def store(db_url: str, tmp_path: Path) -> Iterator[Store]:
    """An open store created by the user ``admin``."""
    s = Store(db_url, str(tmp_path / "artifacts"), creator="admin").open()
    yield s
    s.close()


@pytest.fixture
def client_for(store: Store) -> Callable[[str], Client]:
    """``client_for("alice")``: a client acting as that user on the test store, in a project
    whose promotions need no gate record (tests of the gates build their own clients)."""
    clients: dict[str, Client] = {}

    def make(user: str) -> Client:
        if user not in clients:
            clients[user] = Client(Settings(user=user), store=store, project=NO_GATES).open()
        return clients[user]

    return make


@pytest.fixture
def approver(client_for: Callable[[str], Client]) -> Client:
    """``bob``, made an approver by the admin."""
    client_for("admin").users.set_role("bob", "approver", actor="admin")
    return client_for("bob")


@pytest.fixture(scope="session")
def training_data() -> tuple[pd.DataFrame, pd.Series, pd.DataFrame, pd.Series]:
    X, y = labelled_churn(600, seed=1)
    return X.iloc[:450], y.iloc[:450], X.iloc[450:], y.iloc[450:]


@pytest.fixture(scope="session")
def fitted_pipeline(training_data):  # type: ignore[no-untyped-def]
    """A fitted ColumnTransformer + LogisticRegression pipeline on ``training_data``."""
    X_train, y_train, _, _ = training_data
    return churn_pipeline(X_train, y_train)


def _require(what: str, why: str | None) -> None:
    """Skip (fail under CI=true) when a cluster cannot start here."""
    if why is None:
        return
    message = f"{what} cannot start here: {why}"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message + " (CI=true: the engine tests need it)")
    pytest.skip(message)


@pytest.fixture(scope="session")
def prepared(fitted_pipeline, training_data):  # type: ignore[no-untyped-def]
    """The archive of ``fitted_pipeline`` with its ONNX export, prepared once per session."""
    from shipyard.packaging import prepare_archive

    X, y, Xe, ye = training_data
    return prepare_archive(fitted_pipeline, X_train=X, y_train=y, X_eval=Xe, y_eval=ye)


@pytest.fixture(scope="session")
def spark_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SparkStandalone]:
    """A real Spark standalone cluster for the whole run: a master and two workers (two cores
    and 1 GB each: the ``spark`` session takes one core of each, the other is left for an
    application submitted with spark-submit) on 127.0.0.1, started from pyspark's own
    spark-class."""
    from spark_cluster import QUICK_JVM, SparkStandalone, missing

    _require("A Spark standalone cluster", missing())
    folder = tmp_path_factory.mktemp("spark-cluster")
    cluster = SparkStandalone(folder, workers=2, cores=2, java_options=QUICK_JVM).start()
    yield cluster
    cluster.stop()


@pytest.fixture(scope="session")
def spark(spark_cluster: SparkStandalone) -> Iterator[SparkSession]:
    """One Spark session on the standalone cluster for the whole run (batch scoring and
    monitoring share it): one 512 MB executor on each worker, no UI, and small test data
    still split several ways - 256 KB file splits, two shuffle partitions, Arrow batches of 64
    rows. Its driver JVM runs with the cluster's quick options (C1 only), and a failing task
    is tried twice, not four times: the tests that make a job fail on purpose wait for each
    attempt (a fresh Python worker each), and one retry still rides out a lost executor."""
    from pyspark.sql import SparkSession

    import shipyard

    with pytest.MonkeyPatch.context() as patch:
        # Python workers run this venv's interpreter, so they can import pyarrow and the model
        # libraries (PySpark reads only the environment variable, not spark.pyspark.python).
        patch.setenv("PYSPARK_PYTHON", sys.executable)
        patch.setenv("SPARK_LOCAL_IP", "127.0.0.1")
        session = (
            SparkSession.builder.master(spark_cluster.master_url)
            .appName("shipyard-tests")
            .config("spark.driver.host", "127.0.0.1")
            .config("spark.driver.bindAddress", "127.0.0.1")
            .config("spark.driver.extraJavaOptions", spark_cluster.java_options)
            .config("spark.task.maxFailures", "2")
            .config("spark.executor.memory", "512m")
            .config("spark.executor.cores", "1")
            # one executor on each worker (spread out), the workers' second cores left free
            .config("spark.cores.max", "2")
            # The executors import the Shipyard under test (this checkout's, not the venv's).
            .config("spark.executorEnv.PYTHONPATH", str(Path(shipyard.__file__).parents[1]))
            .config("spark.ui.enabled", "false")
            .config("spark.sql.shuffle.partitions", "2")
            .config("spark.sql.files.maxPartitionBytes", 256 * 1024)
            .config("spark.sql.execution.arrow.maxRecordsPerBatch", "64")
            .getOrCreate()
        )
        yield session
        session.stop()


@pytest.fixture(scope="session")
def dask_scheduler() -> Iterator[str]:
    """The address of a Dask LocalCluster for the whole run: two single-threaded worker
    processes, reached like any remote scheduler (``DaskEngine(scheduler=...)``)."""
    try:
        from distributed import LocalCluster
    except ImportError:
        _require("A Dask cluster", "dask and distributed are not installed")
        raise
    import logging

    with LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        dashboard_address=":0",  # any free port: never collide with 8787
        silence_logs=logging.ERROR,
    ) as cluster:
        yield cluster.scheduler_address
