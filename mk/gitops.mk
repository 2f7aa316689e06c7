# GitOps delivery: promotion between environments and the static checks of the GitHub workflows.
# The Argo CD manifests, the ApplicationSet expansion and the promotion history check are tested by
# pytest (tests/integration/gitops), so CI reads one test count.

LINT_TARGETS += lint-gitops

.PHONY: promote lint-gitops ci-helm
promote: $(VENV)/.installed $(HELM_STAMP) ## copy a release: make promote MODEL=iris-classifier FROM=staging TO=prod [VERSION=1.2.0]
	@if [ -z "$(MODEL)" ] || [ -z "$(FROM)" ] || [ -z "$(TO)" ]; then \
	  echo "usage: make promote MODEL=<model> FROM=<environment> TO=<environment> [VERSION=<older version>]" >&2; exit 2; fi
	$(PY) environments/promote.py promote --model "$(MODEL)" --from "$(FROM)" --to "$(TO)" $(if $(VERSION),--version "$(VERSION)")
	@git --no-pager diff -- environments/

# actionlint also runs shellcheck over `run:` scripts when shellcheck is installed (GitHub's runners have
# it). zizmor audits the workflows and dependabot.yml, offline: no GitHub API from make.
lint-gitops: $(VENV)/.installed $(ACTIONLINT_STAMP) ## lint the GitHub workflows (actionlint, zizmor) and the GitOps Python
	$(TOOLS_BIN)/actionlint .github/workflows/*.yml
	$(VENV)/bin/zizmor --offline --no-progress .github
	$(VENV)/bin/mypy --strict environments/promote.py

# Only the pinned helm, for workflows that need nothing else (chart release, kind end-to-end, deploy).
ci-helm: $(HELM_STAMP)
