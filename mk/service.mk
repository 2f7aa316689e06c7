# The server package: lint (ruff check + ruff format --check) and strict types (mypy) for service/.
# Ruff runs on the server area's own files (other areas' modules in the package are checked by their
# owners' targets); mypy checks the whole package, since it imports them all.
SERVICE_MODULES := __init__ artifact bundle cli demo errors features fetch layout logs observers protocol_named \
                   protocol_v1 protocol_v2 reference runtime settings trust wire
SERVICE_HTTP := __init__ app endpoints middleware openapi responses routes server
SERVICE_PY := $(SERVICE_MODULES:%=service/model_server/%.py) $(SERVICE_HTTP:%=service/model_server/http/%.py) \
              tests/service tests/serverproc.py tests/conftest.py
LINT_TARGETS += lint-service

.PHONY: lint-service
lint-service: $(VENV)/.installed ## ruff (lint + format check) and mypy --strict on the server
	$(VENV)/bin/ruff check $(SERVICE_PY)
	$(VENV)/bin/ruff format --check $(SERVICE_PY)
	$(VENV)/bin/mypy --config-file pyproject.toml service/model_server
