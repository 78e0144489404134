"""The committed gRPC modules are what grpcio-tools makes of the committed ``.proto``.

Run this file as a script to regenerate them after editing the ``.proto``::

    /work/main/.venv/bin/python tests/serving/test_grpc_proto.py
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src"
PROTO_DIR = Path("shipyard", "serving", "_proto")
PROTO = PROTO_DIR / "grpc_predict_v2.proto"
GENERATED = ("grpc_predict_v2_pb2.py", "grpc_predict_v2_pb2_grpc.py")
#: The messages go to a pool of their own: tritonclient (and kserve) register the same
#: ``inference.*`` names in protobuf's default pool, and two definitions of a name there fail.
_DEFAULT_POOL = "DESCRIPTOR = _descriptor_pool.Default().AddSerializedFile("
_OWN_POOL = (
    "# Shipyard: a pool of its own (see shipyard/serving/_proto/__init__.py).\n"
    "POOL = _descriptor_pool.DescriptorPool()\n"
    "DESCRIPTOR = POOL.AddSerializedFile("
)


def generate(src: Path) -> None:
    """Generate the Python modules of ``src``'s ``.proto`` beside it."""
    subprocess.run(
        [
            sys.executable,
            "-m",
            "grpc_tools.protoc",
            f"-I{src}",
            f"--python_out={src}",
            f"--grpc_python_out={src}",
            str(src / PROTO),
        ],
        check=True,
    )
    messages = src / PROTO_DIR / GENERATED[0]
    text = messages.read_text()
    assert text.count(_DEFAULT_POOL) == 1, "protoc's output changed: update generate()"
    messages.write_text(text.replace(_DEFAULT_POOL, _OWN_POOL))


def test_generated_modules_match_the_proto(tmp_path: Path) -> None:
    pytest.importorskip("grpc_tools")
    (tmp_path / PROTO_DIR).mkdir(parents=True)
    shutil.copy(SRC / PROTO, tmp_path / PROTO)
    generate(tmp_path)
    for name in GENERATED:
        committed = (SRC / PROTO_DIR / name).read_text()
        assert (tmp_path / PROTO_DIR / name).read_text() == committed, (
            f"{PROTO_DIR / name} is not what grpcio-tools makes of the .proto; regenerate it "
            "with: python tests/serving/test_grpc_proto.py"
        )


def test_messages_coexist_with_tritons_in_one_process() -> None:
    from tritonclient.grpc import service_pb2

    from shipyard.serving._proto import grpc_predict_v2_pb2 as pb

    request = pb.ModelInferRequest(model_name="churn", id="r1")
    request.parameters["sticky"].string_param = "a"
    theirs = service_pb2.ModelInferRequest.FromString(request.SerializeToString())
    assert (theirs.model_name, theirs.id) == ("churn", "r1")
    assert theirs.parameters["sticky"].string_param == "a"


if __name__ == "__main__":
    generate(SRC)
