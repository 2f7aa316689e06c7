# The server package: strict types (mypy) over the whole package, since it imports every module.
LINT_TARGETS += lint-service

.PHONY: lint-service
lint-service: $(VENV)/.installed ## mypy --strict on the server package
	$(VENV)/bin/mypy --config-file pyproject.toml service/model_server

.PHONY: settings-doc
settings-doc: $(VENV)/.installed ## regenerate the settings table of docs/user-guide/configuration.md
	$(PY) -m model_server.settings docs/user-guide/configuration.md
