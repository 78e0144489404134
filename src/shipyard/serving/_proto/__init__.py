"""The Open Inference Protocol's gRPC service, generated from ``grpc_predict_v2.proto``.

``grpc_predict_v2_pb2`` (messages) and ``grpc_predict_v2_pb2_grpc`` (service) are generated
by grpcio-tools and committed; ``tests/serving/test_grpc_proto.py`` checks that they match
the ``.proto`` and rewrites them when run as a script. The messages live in a descriptor pool
of their own, not protobuf's default one: a client library in the same process (Triton's,
KServe's) registers the same ``inference.*`` names there.
"""
