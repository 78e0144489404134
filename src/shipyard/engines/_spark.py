"""The Spark engine: the active Spark session's cluster (``spark-submit --master ...``)."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from shipyard.batch import ScoreSummary, score_spark, table_format
from shipyard.dataset import Profile, Schema
from shipyard.engines._contract import LoggedWindow
from shipyard.engines._progress import display
from shipyard.errors import InvalidInput
from shipyard.monitoring import (
    DriftAccumulator,
    Progress,
    spark_accumulate,
    spark_errors,
    spark_message,
    spark_session,
)
from shipyard.packaging import LoadedModel


class SparkEngine:
    """Runs on the active Spark session, or on a new one stopped afterwards: its master is
    ``master`` when given, else what ``spark-submit --master``, ``PYSPARK_SUBMIT_ARGS`` or
    ``spark-defaults.conf`` say (``local[*]`` when nothing does). Python workers run this
    interpreter unless ``PYSPARK_PYTHON`` says otherwise, so they import the same Shipyard.
    Scoring writes a folder of part files; counting runs Spark aggregations."""

    name = "spark"

    def __init__(self, *, master: str | None = None) -> None:
        self.master = master

    def score(
        self, loaded: LoadedModel, src: Path, dst: Path, *, progress: Progress | None = None
    ) -> ScoreSummary:
        fmt, out_fmt = table_format(src), table_format(dst)
        if not src.exists():
            raise InvalidInput(f"No such file: '{src}'.")
        if dst.exists():
            raise InvalidInput(
                f"'{dst}' already exists: Spark writes a new folder; remove it first."
            )
        started = time.perf_counter()
        with (
            spark_session("shipyard score", master=self.master) as spark,
            display(progress)(f"Scoring {src} on Spark", 1) as advance,
        ):
            try:
                from pyspark.sql import Observation
                from pyspark.sql import functions as F

                reader = spark.read.option("header", True).option("inferSchema", True)
                df = reader.parquet(str(src)) if fmt == "parquet" else reader.csv(str(src))
                # The rows are counted on their way to the files, in the writing job itself:
                # reading the output back to count it would cost another job or two.
                written = Observation()  # a unique name: other queries of the session differ
                scored = score_spark(loaded, df).observe(written, F.count(F.lit(1)).alias("rows"))
                writer = scored.write.mode("errorifexists").option("header", True)
                writer.format(out_fmt).save(str(dst))
                rows, parts = int(written.get["rows"]), len(list(dst.glob("part-*")))
            except BaseException as exc:
                # Spark leaves the folder of a failed job behind: nothing half-written stays.
                shutil.rmtree(dst, ignore_errors=True)
                if isinstance(exc, spark_errors()):
                    message = spark_message(exc)
                    raise InvalidInput(f"Spark could not score '{src}': {message}") from exc
                raise
            advance(1)
        return ScoreSummary(rows=rows, chunks=parts, seconds=time.perf_counter() - started)

    def count(
        self,
        reference: Profile,
        source: Path | LoggedWindow,
        *,
        schema: Schema | None = None,
        progress: Progress | None = None,
    ) -> DriftAccumulator:
        if isinstance(source, LoggedWindow):
            return spark_accumulate(
                reference,
                window=source.as_tuple(),
                schema=schema,
                progress=progress,
                master=self.master,
            )
        return spark_accumulate(
            reference, source, schema=schema, progress=progress, master=self.master
        )

    def __repr__(self) -> str:
        return f"SparkEngine(master={self.master!r})"
