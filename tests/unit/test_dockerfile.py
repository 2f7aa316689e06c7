"""The static structure of service/Dockerfile, read as text: what keeps the image small, reproducible and
cacheable, which no run of the image shows. What the built image does when it runs (its user, env,
entrypoint, bundles) is checked on a real cluster by tests/e2e/test_image.py.
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass, field

import pytest
from support.paths import ROOT

DOCKERFILE = ROOT / "service" / "Dockerfile"
CONTEXT = ROOT / "service"


@dataclass
class Stage:
    base: str
    name: str | None
    steps: list[tuple[str, str]] = field(default_factory=list)  # (INSTRUCTION, arguments)

    def all(self, instruction: str) -> list[str]:
        return [a for i, a in self.steps if i == instruction]


def parse(text: str) -> tuple[dict[str, str], list[Stage]]:
    """(global ARG defaults, stages): line continuations joined, comments dropped."""
    lines: list[str] = []
    buf = ""
    for raw in text.splitlines():
        if raw.lstrip().startswith("#"):
            continue
        if raw.rstrip().endswith("\\"):
            buf += raw.rstrip()[:-1] + " "
            continue
        buf += raw
        if buf.strip():
            lines.append(" ".join(buf.split()))
        buf = ""
    args: dict[str, str] = {}
    stages: list[Stage] = []
    for line in lines:
        instruction, _, rest = line.partition(" ")
        instruction = instruction.upper()
        if instruction == "ARG" and not stages:
            key, _, default = rest.partition("=")
            args[key] = default
        elif instruction == "FROM":
            words = rest.split()
            stages.append(Stage(words[0], words[2] if len(words) > 2 else None))
        else:
            stages[-1].steps.append((instruction, rest))
    return args, stages


@pytest.fixture(scope="module")
def dockerfile() -> tuple[dict[str, str], list[Stage]]:
    return parse(DOCKERFILE.read_text())


def test_two_stages_on_one_python_base_pinned_by_tag_and_digest(
    dockerfile: tuple[dict[str, str], list[Stage]],
) -> None:
    args, stages = dockerfile
    assert [s.name for s in stages] == ["build", None]
    # Both stages build on the same base, given as a build argument (make images passes a local one).
    assert {s.base for s in stages} == {"${PYTHON_IMAGE}"}
    default = args["PYTHON_IMAGE"]
    assert re.fullmatch(r"docker\.io/library/python:3\.11\.\d+-slim-bookworm@sha256:[0-9a-f]{64}", default), (
        default
    )


def test_dependencies_come_from_the_hashed_lock_before_the_source_is_copied(
    dockerfile: tuple[dict[str, str], list[Stage]],
) -> None:
    build = dockerfile[1][0]
    steps = [f"{i} {a}" for i, a in build.steps]
    deps = next(n for n, s in enumerate(steps) if "pip install" in s and "/tmp/requirements.lock" in s)
    source = next(n for n, s in enumerate(steps) if s.startswith("COPY model_server "))
    # The dependency layer is reused until the lock changes: a code change rebuilds only the package.
    assert deps < source
    assert [s for s in steps[:deps] if s.startswith("COPY")] == [
        "COPY requirements.lock /tmp/requirements.lock"
    ]
    for command in (c for s in steps if s.startswith("RUN") for c in s.split("&&")):
        if re.search(r"\bpip install\b.* -r ", command):
            words = shlex.split(command)
            assert {"--require-hashes", "--no-deps", "--only-binary=:all:"} <= set(words), command
    # The build backend is installed for the build only.
    assert any("pip uninstall --yes setuptools" in s for s in steps)


def test_the_final_stage_copies_only_build_output_and_runs_as_a_numeric_non_root_user(
    dockerfile: tuple[dict[str, str], list[Stage]],
) -> None:
    final = dockerfile[1][-1]
    assert final.all("COPY") == [
        "--from=build /opt/venv /opt/venv",
        "--from=build /opt/model-server/bundles /opt/model-server/bundles",
    ]
    # No package manager, no compiler in the final stage: one RUN creates the user, the other writes the
    # standard library's optimized bytecode for the PYTHONOPTIMIZE the server runs with.
    user, stdlib = final.all("RUN")
    assert user.startswith("groupadd --system --gid 10001 ") and "useradd --system --uid 10001" in user, user
    assert stdlib.startswith("python -OO -m compileall "), stdlib
    env = dict(pair.split("=", 1) for pair in shlex.split(" ".join(final.all("ENV"))))
    assert env["PYTHONOPTIMIZE"] == "2"
    # The venv's optimized bytecode is written in the build stage, by every layer that installs into it
    # (compileall skips what an earlier layer compiled).
    installs = [a for i, a in dockerfile[1][0].steps if i == "RUN" and "pip install" in a]
    assert len(installs) == 2
    for run in installs:
        assert re.search(r"&& python -OO -m compileall -q -j 0 (-x '[^']+' )?/opt/venv/lib$", run), run
    # ...but not the build backend before it is removed: its leftover bytecode would keep a `setuptools`
    # package importable in the final image.
    assert "setuptools" in installs[0].split("compileall")[1]
    assert "pip uninstall --yes setuptools" in installs[1].split("compileall")[0]
    assert final.all("USER") == ["10001:10001"]
    assert json.loads(final.all("ENTRYPOINT")[0]) == ["model-server"]
    assert json.loads(final.all("CMD")[0]) == ["serve"]
    assert final.all("EXPOSE") == ["8000", "8081"]


def test_the_image_carries_the_oci_labels_with_version_and_revision_from_build_args(
    dockerfile: tuple[dict[str, str], list[Stage]],
) -> None:
    final = dockerfile[1][-1]
    labels = dict(pair.split("=", 1) for pair in shlex.split(" ".join(final.all("LABEL"))))
    keys = ("title", "description", "source", "licenses", "version", "revision")
    assert sorted(labels) == sorted(f"org.opencontainers.image.{k}" for k in keys)
    assert labels["org.opencontainers.image.version"] == "${VERSION}"
    assert labels["org.opencontainers.image.revision"] == "${REVISION}"
    assert {a.split("=")[0] for a in final.all("ARG")} == {"VERSION", "REVISION"}


def test_the_build_context_sends_only_what_the_build_copies(
    dockerfile: tuple[dict[str, str], list[Stage]],
) -> None:
    ignore = [
        line for line in (CONTEXT / ".dockerignore").read_text().splitlines() if line and line[0] != "#"
    ]
    assert ignore[0] == "*"
    allowed = {line[1:].rstrip("/") for line in ignore if line.startswith("!")}
    copied = {a.split()[0] for a in dockerfile[1][0].all("COPY")}
    assert copied == allowed, (copied, allowed)
