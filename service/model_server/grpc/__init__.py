"""The gRPC transport: the Open Inference Protocol's ``GRPCInferenceService``, ``grpc.health.v1`` and
server reflection, on grpc.aio in the HTTP server's process and event loop, over the same runtime.

Thin like the HTTP layer: the protocol codec (protocols/v2_grpc.py) reads and writes the messages, the
runtime predicts. Only this package (and the command line that starts it) imports grpc.
"""
