"""Scripts that drive a stock Open Inference Protocol gRPC client, unmodified, against a server and
print what it saw as one JSON document (support.grpccalls.run_stock_client runs them in a process of
their own: each client registers its own copy of the protocol's messages)."""
