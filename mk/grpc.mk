# The Open Inference Protocol's gRPC binding: message classes generated from the proto beside them,
# with the grpcio-tools the dev lock pins. The generated files are committed (the image needs no
# protoc); tests/unit/protocols/test_grpc_stubs.py regenerates them and fails when they differ.
PROTO_DIR := service/model_server/protocols/proto

.PHONY: grpc-stubs
grpc-stubs: $(VENV)/.installed ## regenerate the gRPC message classes from $(PROTO_DIR)/*.proto
	$(PY) -m grpc_tools.protoc -I $(PROTO_DIR) --python_out=$(PROTO_DIR) --pyi_out=$(PROTO_DIR) \
	  $(notdir $(wildcard $(PROTO_DIR)/*.proto))

# KServe's SDK cannot share the dev lock (its own pins of fastapi, pandas, uvicorn...): its stock gRPC
# client gets a venv of its own from a hashed lock, built before the tests run.
KSERVE_LOCK := tests/support/stock_clients/kserve-requirements.lock
KSERVE_VENV := $(TOOLS_DIR)/kserve-venv

test: $(KSERVE_VENV)/.installed

$(KSERVE_VENV)/.installed: $(KSERVE_LOCK) | $(VENV)/.installed
	test -x $(KSERVE_VENV)/bin/python || $(PYTHON_BOOTSTRAP) -m venv $(KSERVE_VENV)
	$(UV) pip sync -q --python $(KSERVE_VENV)/bin/python --require-hashes $(KSERVE_LOCK)
	touch $@

.PHONY: lock-kserve
lock-kserve: $(VENV)/.installed ## re-resolve the lock of the KServe client's venv (then commit it)
	$(UV_COMPILE) tests/support/stock_clients/kserve-requirements.in -o $(KSERVE_LOCK)
