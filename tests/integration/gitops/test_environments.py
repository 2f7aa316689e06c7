"""environments/: every values file is valid chart input, and every release passed through staging."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from support.gitops import environment_listing
from support.paths import CHART, ENVIRONMENTS, ROOT

VALUES_FILES = sorted(
    [ENVIRONMENTS / "common.yaml", *ENVIRONMENTS.glob("*/values.yaml"), *ENVIRONMENTS.glob("*/models/*.yaml")]
)


def relaxed(schema: Any) -> Any:
    """The chart's schema without `required`: one values file is a layer, not the whole of the values."""
    if isinstance(schema, dict):
        return {k: relaxed(v) for k, v in schema.items() if k != "required"}
    if isinstance(schema, list):
        return [relaxed(v) for v in schema]
    return schema


@pytest.fixture(scope="module")
def layer_validator() -> jsonschema.protocols.Validator:
    schema = relaxed(json.loads((CHART / "values.schema.json").read_text()))
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


@pytest.mark.parametrize("path", VALUES_FILES, ids=lambda p: str(p.relative_to(ENVIRONMENTS)))
def test_values_file_validates_against_the_chart_schema(path: Path, layer_validator: Any) -> None:
    values = yaml.safe_load(path.read_text())
    errors = [
        f"{'.'.join(map(str, e.absolute_path)) or '<top>'}: {e.message}"
        for e in layer_validator.iter_errors(values)
    ]
    assert not errors, f"{path.relative_to(ROOT)}:\n" + "\n".join(errors)


def test_the_layer_check_catches_a_typo(layer_validator: Any) -> None:
    errors = list(layer_validator.iter_errors({"autoscalling": {"enabled": True}}))
    assert errors and "autoscalling" in errors[0].message


def test_environment_files_are_complete_and_consistent() -> None:
    listing = environment_listing()
    for env, models in listing.items():
        data = yaml.safe_load((ENVIRONMENTS / env / "env.yaml").read_text())
        assert set(data) == {"destination", "sync", "promotion"}, env
        assert data["destination"]["namespace"] == f"models-{env}"
        assert isinstance(data["sync"]["automated"], bool)
        assert data["promotion"]["from"] in (None, *listing), env
        assert (ENVIRONMENTS / env / "values.yaml").is_file()
        assert models, f"{env} has no models"
        for model in models:
            values = yaml.safe_load((ENVIRONMENTS / env / "models" / f"{model}.yaml").read_text())
            assert values["model"]["name"] == model, f"{env}/models/{model}.yaml names another model"
    # dev takes new releases; staging and prod only by promotion, in that order.
    sources = {
        env: yaml.safe_load((ENVIRONMENTS / env / "env.yaml").read_text())["promotion"]["from"]
        for env in listing
    }
    assert sources["dev"] is None and sources["staging"] == "dev" and sources["prod"] == "staging"


def test_only_prod_waits_for_a_manual_sync() -> None:
    manual = {
        env
        for env in environment_listing()
        if not yaml.safe_load((ENVIRONMENTS / env / "env.yaml").read_text())["sync"]["automated"]
    }
    assert manual == {"prod"}


def test_every_release_in_prod_was_deployed_to_staging_first() -> None:
    """The promotion check of `make test`: a release in prod (version, bundle, image) must have been
    staging's, in the working tree or in any commit of staging's file; the same for staging and dev."""
    done = subprocess.run(
        [sys.executable, str(ENVIRONMENTS / "promote.py"), "check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "passed through its source environment first" in done.stdout
