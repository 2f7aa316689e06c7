# The server package: strict types (mypy) over the whole package, since it imports every module.
LINT_TARGETS += lint-service

.PHONY: lint-service
lint-service: $(VENV)/.installed ## mypy --strict on the server package
	$(VENV)/bin/mypy --config-file pyproject.toml service/model_server
