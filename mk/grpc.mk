# The Open Inference Protocol's gRPC binding: message classes generated from the proto beside them,
# with the grpcio-tools the dev lock pins. The generated files are committed (the image needs no
# protoc); tests/unit/protocols/test_grpc_stubs.py regenerates them and fails when they differ.
PROTO_DIR := service/model_server/protocols/proto

.PHONY: grpc-stubs
grpc-stubs: $(VENV)/.installed ## regenerate the gRPC message classes from $(PROTO_DIR)/*.proto
	$(PY) -m grpc_tools.protoc -I $(PROTO_DIR) --python_out=$(PROTO_DIR) --pyi_out=$(PROTO_DIR) \
	  $(notdir $(wildcard $(PROTO_DIR)/*.proto))
