"""grpcio's own ceiling: a bare ``grpc.aio`` server answering every ``ModelInfer`` at once.

    python bench/serving/grpc_floor.py PORT

The ``grpc-floor:grpc`` target of ``bench/serving/run.py``. It registers the Open Inference
Protocol's service from Shipyard's generated code, as ``shipyard serve --grpc-port`` does (so
each call's request is parsed into a ``ModelInferRequest`` and the answer serialized, as
there), and answers every call with one fixed ``ModelInferResponse`` (two FP64
probabilities): no model, no log, no metrics. What it costs per call is what grpcio (and
protobuf) cost any Python gRPC server under the same h2load harness; what Shipyard costs above
it is Shipyard's own.
"""

from __future__ import annotations

import asyncio
import struct
import sys
from typing import Any

import grpc

from shipyard.serving._proto import grpc_predict_v2_pb2 as pb
from shipyard.serving._proto import grpc_predict_v2_pb2_grpc as pb_grpc


def fixed_response() -> Any:
    """The one answer: ``predict_proba`` of one row, raw FP64, as Shipyard answers."""
    answer = pb.ModelInferResponse(model_name="bench", model_version="1")
    answer.outputs.add(name="predict_proba", datatype="FP64", shape=[1, 2])
    answer.raw_output_contents.append(struct.pack("<2d", 0.25, 0.75))
    return answer


class Floor(pb_grpc.GRPCInferenceServiceServicer):
    def __init__(self) -> None:
        self.answer = fixed_response()

    async def ServerLive(self, request: Any, context: Any) -> Any:
        return pb.ServerLiveResponse(live=True)

    async def ModelInfer(self, request: Any, context: Any) -> Any:
        return self.answer


async def serve(port: int) -> None:
    server = grpc.aio.server()
    pb_grpc.add_GRPCInferenceServiceServicer_to_server(Floor(), server)
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    await server.wait_for_termination()


def main() -> None:
    port = int(sys.argv[1])
    try:  # the event loop uvicorn picks for ``shipyard serve``, where installed
        import uvloop
    except ImportError:
        asyncio.run(serve(port))
    else:
        uvloop.run(serve(port))


if __name__ == "__main__":
    main()
