"""fingerprint: a content hash stable across re-reads and sensitive to any change."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from shipyard.dataset import Fingerprint, content_hash, fingerprint, infer_schema, profile_frame
from shipyard.errors import InvalidInput


def dataset(rows: int = 300) -> pd.DataFrame:
    rng = np.random.default_rng(2024)
    frame = pd.DataFrame(
        {
            "id": np.arange(rows, dtype=np.int64),
            "visits": pd.array(rng.integers(0, 50, rows), dtype="Int64"),
            "income": rng.normal(50_000, 15_000, rows),
            "ratio": rng.random(rows) / 3,
            "member": rng.random(rows) < 0.5,
            "churned": pd.array(rng.random(rows) < 0.3, dtype="boolean"),
            "city": rng.choice(["Oslo", "Lima", "Zürich", "東京"], rows),
            "plan": pd.Categorical(rng.choice(["basic", "pro"], rows)),
            "joined": pd.date_range("2023-01-01 08:30", periods=rows, freq="37min").as_unit("ns"),
            "big": np.int64(2**60) + np.arange(rows, dtype=np.int64),
        }
    )
    frame.loc[::7, "visits"] = pd.NA
    frame.loc[::11, "income"] = np.nan
    frame.loc[::5, "churned"] = pd.NA
    frame.loc[::13, "city"] = None
    return frame


def test_hash_is_stable_across_a_parquet_round_trip(tmp_path: Path) -> None:
    frame = dataset()
    frame.to_parquet(tmp_path / "data.parquet")
    again = pd.read_parquet(tmp_path / "data.parquet")
    assert content_hash(again) == content_hash(frame)


def test_hash_is_stable_across_a_csv_round_trip(tmp_path: Path) -> None:
    frame = dataset()
    frame.to_csv(tmp_path / "data.csv", index=False)
    # pandas 2's default float parser can be off by one ulp, which is a changed value; its
    # round-trip parser, pandas 3's default (where the option is deprecated), is exact.
    exact: dict[str, Any] = {}
    if int(pd.__version__.split(".")[0]) < 3:
        exact["float_precision"] = "round_trip"
    again = pd.read_csv(tmp_path / "data.csv", parse_dates=["joined"], **exact)
    # CSV loses the dtypes: Int64 with gaps comes back as float64, boolean with gaps as object,
    # categories as text. The values are the same, and so is the hash.
    assert again["visits"].dtype == np.float64
    assert again["churned"].dtype == object
    assert content_hash(again) == content_hash(frame)


def test_hash_ignores_the_index_and_storage_dtypes() -> None:
    frame = dataset()
    reference = content_hash(frame)
    relabelled = frame.set_axis(pd.Index([f"r{i}" for i in range(len(frame))]), axis=0)
    assert content_hash(relabelled) == reference
    restyled = frame.astype(
        {
            "id": "Int64",  # int64 vs nullable Int64
            "visits": "float64",
            "city": "category",  # str vs category vs object
            "plan": object,
            "member": "boolean",
            "joined": "datetime64[s]",
        }
    )
    assert content_hash(restyled) == reference
    as_text_dtype = frame.astype({"city": "string", "plan": "string"})
    assert content_hash(as_text_dtype) == reference
    aware = frame.assign(joined=frame["joined"].dt.tz_localize("UTC").dt.tz_convert("Asia/Tokyo"))
    assert content_hash(aware) == reference


def test_hash_changes_with_any_value_name_or_order() -> None:
    frame = dataset()
    reference = content_hash(frame)
    changes = {
        "a float": frame.assign(income=frame["income"].where(frame.index != 3, 1.5)),
        "a float's last bit": frame.assign(ratio=np.nextafter(frame["ratio"], 1)),
        "a gap filled": frame.assign(income=frame["income"].fillna(0.0)),
        "a gap made": frame.assign(ratio=frame["ratio"].where(frame.index != 5)),
        "a big integer": frame.assign(big=frame["big"] + (frame.index == 9)),
        "a boolean": frame.assign(member=~frame["member"]),
        "a text": frame.assign(city=frame["city"].replace("Oslo", "oslo")),
        "a category": frame.assign(plan=frame["plan"].astype(str).replace("pro", "max")),
        "a datetime by 1 ns": frame.assign(joined=frame["joined"] + pd.Timedelta(1, "ns")),
        "a column name": frame.rename(columns={"income": "revenue"}),
        "the column order": frame[[*frame.columns[1:], frame.columns[0]]],
        "the row order": frame.iloc[[1, 0, *range(2, len(frame))]],
        "a row dropped": frame.iloc[:-1],
        "a column dropped": frame.drop(columns=["ratio"]),
        "text split differently": frame.assign(
            city=frame["city"].where(frame.index != 0, "Oslo").where(frame.index != 1, "Lima")
        ),
    }
    hashes = {name: content_hash(changed) for name, changed in changes.items()}
    assert all(value != reference for value in hashes.values()), hashes
    assert len(set(hashes.values())) == len(hashes)


def test_hash_separates_text_boundaries_and_types() -> None:
    assert content_hash(pd.DataFrame({"s": ["ab", "c"]})) != content_hash(
        pd.DataFrame({"s": ["a", "bc"]})
    )
    assert content_hash(pd.DataFrame({"s": ["", "x"]})) != content_hash(
        pd.DataFrame({"s": [None, "x"]})
    )
    assert content_hash(pd.DataFrame({"s": ["1", "2"]})) != content_hash(
        pd.DataFrame({"s": [1, 2]})
    )
    assert content_hash(pd.DataFrame({"b": [True, False]})) != content_hash(
        pd.DataFrame({"b": [1, 0]})
    )


def test_hash_treats_equal_numbers_alike() -> None:
    assert content_hash(pd.DataFrame({"x": [1, 2]})) == content_hash(
        pd.DataFrame({"x": [1.0, 2.0]})
    )
    assert content_hash(pd.DataFrame({"x": [0.0, np.nan]})) == content_hash(
        pd.DataFrame({"x": pd.array([-0.0, None], dtype="Float64")})
    )
    assert content_hash(pd.DataFrame({"x": [None, None]})) == content_hash(
        pd.DataFrame({"x": [np.nan, np.nan]})
    )


def test_hash_is_pinned() -> None:
    # A change here means every stored fingerprint stops matching: bump the hash version.
    frame = pd.DataFrame(
        {
            "n": [1, 2, None],
            "s": ["a", None, "ü"],
            "b": [True, False, True],
            "t": pd.to_datetime(pd.Series(["2024-01-01 00:00", "2024-06-30 12:00", None])),
            "c": pd.Categorical(["x", "y", "x"]),
        }
    )
    assert content_hash(frame) == PINNED


PINNED = "sha256:9c0fc41dd04a4182817313e44b3d6417e1256f9553ae569b99b282b804642941"


def test_fingerprint_fields() -> None:
    frame = dataset(50)
    fp = fingerprint(frame, name="train", target="churned")
    assert (fp.name, fp.n_rows, fp.n_columns, fp.target) == ("train", 50, 10, "churned")
    assert fp.content_hash == content_hash(frame)
    assert fp.content_hash.startswith("sha256:")
    assert len(fp.content_hash) == len("sha256:") + 64
    assert fp.schema_ == infer_schema(frame)
    assert fp.profile == profile_frame(frame)


def test_fingerprint_json_uses_the_schema_key_and_round_trips() -> None:
    fp = fingerprint(dataset(50), name="train")
    dumped = fp.model_dump(mode="json")
    assert list(dumped) == [
        "name", "content_hash", "n_rows", "n_columns", "target", "schema", "profile"
    ]  # fmt: skip
    restored = Fingerprint.model_validate(json.loads(json.dumps(dumped)))
    assert restored == fp
    assert Fingerprint.model_validate_json(fp.model_dump_json()) == fp
    assert fp.model_dump(mode="json", by_alias=True) == dumped


@pytest.mark.parametrize(
    ("frame", "kwargs", "message"),
    [
        (
            pd.DataFrame({"x": [1]}),
            {"name": "train", "target": "y"},
            "The 'target' parameter of fingerprint must be a column of the frame. Got 'y', "
            "which is not among its 1 columns.",
        ),
        (
            pd.DataFrame({"x": pd.Series([], dtype=float)}),
            {"name": "train"},
            "fingerprint needs at least one row and one column. Got a frame of shape (0, 1) "
            "instead.",
        ),
        (
            pd.DataFrame({"x": [1]}),
            {"name": " "},
            "The 'name' parameter of fingerprint must be a non-empty str. Got ' ' instead.",
        ),
    ],
)
def test_fingerprint_refuses_bad_arguments(
    frame: pd.DataFrame, kwargs: dict[str, str], message: str
) -> None:
    with pytest.raises(InvalidInput) as caught:
        fingerprint(frame, **kwargs)
    assert caught.value.message == message
