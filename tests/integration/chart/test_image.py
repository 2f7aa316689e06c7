"""What the image runs, without a container engine: service/Dockerfile's build stage executed on this
machine under a temp root, then the final stage's ENTRYPOINT + CMD started with its ENV.

Every RUN of the build stage is translated, not re-typed: `pip install/uninstall` becomes `uv pip` with
the same lock files and flags (uv installs the same hashed wheels from its cache in seconds, where pip
would download them again), absolute paths move under the temp root, and any other command runs as
written from the venv. A RUN this test cannot translate fails it, so the test follows the Dockerfile.
Deviations from a real container, by necessity: the process runs as the test's user, not UID 10001
(checked separately), and PORT is a free port instead of 8000.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from support.paths import ROOT
from support.pods import Mounts, Process, http, wait_for
from support.serverproc import free_port

pytestmark = pytest.mark.slow

DOCKERFILE = ROOT / "service" / "Dockerfile"
CONTEXT = ROOT / "service"
UV = ROOT / ".venv" / "bin" / "uv"
# The python image's PATH before ENV PATH=/opt/venv/bin:$PATH.
BASE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@dataclass
class Stage:
    base: str
    name: str | None
    steps: list[tuple[str, str]] = field(default_factory=list)  # (INSTRUCTION, arguments)

    def all(self, instruction: str) -> list[str]:
        return [a for i, a in self.steps if i == instruction]


def parse_dockerfile(text: str) -> list[Stage]:
    """Instructions per stage, with line continuations joined and comments dropped."""
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
            base = words[0]
            for key, value in args.items():
                base = base.replace(f"${{{key}}}", value)
            stages.append(Stage(base, words[2] if len(words) > 2 else None))
        else:
            stages[-1].steps.append((instruction, rest))
    return stages


def env_pairs(arguments: str) -> dict[str, str]:
    return dict(word.split("=", 1) for word in shlex.split(arguments))


@dataclass
class HostBuild:
    root: Path  # stands for the container's /

    @property
    def venv(self) -> Path:
        return self.root / "opt" / "venv"

    def path(self, container_path: str) -> str:
        return str(self.root) + container_path if container_path.startswith("/") else container_path

    def copy(self, arguments: str) -> None:
        src, dst = arguments.split()
        target = Path(self.path(dst))
        target.parent.mkdir(parents=True, exist_ok=True)
        source = CONTEXT / src
        if source.is_dir():
            shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(source, target)

    def translate(self, argv: list[str]) -> list[str]:
        if argv[:3] == ["python", "-m", "venv"]:
            # The interpreter the tests run on is the image's Python version (3.11, pinned in both).
            return [sys._base_executable, "-m", "venv", self.path(argv[3])]
        if argv[0] == "pip" and argv[1] in ("install", "uninstall"):
            dropped = {"--no-cache-dir", "--yes"}  # uv keeps its cache; uv uninstall never prompts
            rest = [self.path(a) for a in argv[2:] if a not in dropped]
            return [str(UV), "pip", argv[1], "--python", str(self.venv / "bin" / "python"), *rest]
        exe = self.venv / "bin" / argv[0]
        assert exe.exists(), f"this test cannot run the Dockerfile step {shlex.join(argv)!r}"
        return [str(exe), *(self.path(a) for a in argv[1:])]

    def run(self, arguments: str) -> None:
        for command in arguments.split(" && "):
            argv = self.translate(shlex.split(command))
            proc = subprocess.run(
                argv,
                capture_output=True,
                text=True,
                timeout=600,
                cwd=self.root,
                env={**os.environ, "PATH": f"{self.venv / 'bin'}:{os.environ['PATH']}"},
            )
            assert proc.returncode == 0, f"RUN {command}\n-> {shlex.join(argv)}\n{proc.stdout}\n{proc.stderr}"


@pytest.fixture(scope="module")
def stages() -> list[Stage]:
    return parse_dockerfile(DOCKERFILE.read_text())


@pytest.fixture(scope="module")
def built(stages: list[Stage], tmp_path_factory: pytest.TempPathFactory) -> HostBuild:
    """The build stage, executed under a temp root: venv, locked deps, the package, the demo bundles."""
    build = HostBuild(tmp_path_factory.mktemp("image-root"))
    for instruction, arguments in stages[0].steps:
        if instruction == "COPY":
            build.copy(arguments)
        elif instruction == "RUN":
            build.run(arguments)
        else:
            assert instruction in ("ENV", "ARG", "WORKDIR", "LABEL"), instruction
    return build


def test_dockerfile_is_multi_stage_pinned_and_non_root(stages: list[Stage]) -> None:
    build, final = stages[0], stages[-1]
    assert len(stages) == 2 and build.name == "build"
    assert build.base == final.base
    assert "@sha256:" in final.base and final.base.startswith("python:3.11."), final.base
    assert f"{sys.version_info.major}.{sys.version_info.minor}" in final.base.split(":")[1]
    # Dependencies are installed (from the hashed lock) before the source is copied: layer cache.
    steps = [f"{i} {a}" for i, a in build.steps]
    deps = next(n for n, s in enumerate(steps) if "--require-hashes" in s and "requirements.lock" in s)
    source = next(n for n, s in enumerate(steps) if s.startswith("COPY model_server"))
    assert deps < source
    assert all("--require-hashes" in s for s in steps if "pip install" in s and " -r " in s)
    # Only built artifacts reach the final stage; it runs as a numeric non-root user.
    assert all(a.startswith("--from=build ") for a in final.all("COPY")), final.all("COPY")
    assert final.all("USER") == ["10001:10001"]
    assert any("--uid 10001" in a for a in final.all("RUN"))
    assert json.loads(final.all("ENTRYPOINT")[0]) == ["model-server"]
    assert json.loads(final.all("CMD")[0]) == ["serve"]
    labels = " ".join(final.all("LABEL"))
    for key in ("title", "description", "source", "licenses", "version", "revision"):
        assert f"org.opencontainers.image.{key}=" in labels


def test_dockerignore_sends_only_what_the_build_copies(stages: list[Stage]) -> None:
    ignore = (CONTEXT / ".dockerignore").read_text().split()
    assert ignore[0] == "*" or "*" in ignore
    copied = {a.split()[0] for a in stages[0].all("COPY")}
    allowed = {line[1:].rstrip("/") for line in ignore if line.startswith("!")}
    assert copied == allowed, (copied, allowed)


def test_image_demo_bundles_are_byte_identical_to_make_demo(built: HostBuild, demo_bundles: Path) -> None:
    """The build stage's `model-server demo` is reproducible: the same bytes as the tests' own build."""
    image_bundles = built.root / "opt" / "model-server" / "bundles"
    assert sorted(p.name for p in image_bundles.iterdir()) == ["iris-classifier", "sales-regressor"]
    for bundle in image_bundles.iterdir():
        for f in ("model.skops", "metadata.json"):
            assert (bundle / f).read_bytes() == (demo_bundles / bundle.name / f).read_bytes(), (
                f"{bundle.name}/{f}"
            )


def test_image_entrypoint_serves_the_baked_in_bundle(
    stages: list[Stage], built: HostBuild, tmp_path: Path
) -> None:
    final = stages[-1]
    env: dict[str, str] = {"PATH": BASE_PATH, "HOME": "/nonexistent"}
    for arguments in final.all("ENV"):
        for key, value in env_pairs(arguments).items():
            env[key] = value.replace("$PATH", env.get("PATH", ""))
    assert env["MODEL_BUNDLE"] == "/opt/model-server/bundles/iris-classifier"
    assert (env["HOST"], env["PORT"], env["GRPC_PORT"]) == ("0.0.0.0", "8000", "8081")
    assert final.all("EXPOSE") == [env["PORT"], env["GRPC_PORT"]]
    assert env.get("PYTHONDONTWRITEBYTECODE") == "1"

    # The container's filesystem: / is the build root (read-only in the chart), /tmp a scratch dir.
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    fs = Mounts({"/tmp": scratch, "/opt": built.root / "opt"})
    env = {
        k: ":".join(fs.host(p) for p in v.split(":")) if k == "PATH" else fs.host(v) for k, v in env.items()
    }
    env["PORT"] = str(free_port())
    env["GRPC_PORT"] = str(free_port())
    argv = json.loads(final.all("ENTRYPOINT")[0]) + json.loads(final.all("CMD")[0])
    exe = shutil.which(argv[0], path=env["PATH"])
    assert exe == str(built.venv / "bin" / "model-server"), exe

    before = {p: p.stat().st_mtime_ns for p in (built.root / "opt").rglob("*")}
    workdir = Path(fs.host(final.all("WORKDIR")[-1]))
    base = f"http://127.0.0.1:{env['PORT']}"
    with Process([exe, *argv[1:]], env, workdir) as proc:
        wait_for(lambda: http("GET", base + "/readyz")[0] == 200, 60, "/readyz", proc)
        row = {"sepal_length": 6.7, "sepal_width": 3.0, "petal_length": 5.2, "petal_width": 2.3}
        status, body = http(
            "POST", base + "/predict", json.dumps(row).encode(), {"Content-Type": "application/json"}
        )
        assert status == 200, body
        assert json.loads(body) == {
            "model_name": "iris-classifier",
            "model_version": "1.0.0",
            "predictions": ["virginica"],
        }
        assert http("GET", base + "/metrics")[0] == 200
        assert proc.stop(timeout=30) == 0, proc.log()
    # Nothing under the image's own paths was written at run time (the chart mounts / read-only).
    after = {p: p.stat().st_mtime_ns for p in (built.root / "opt").rglob("*")}
    assert after == before, sorted(set(after) ^ set(before))[:10] or "modified files"


def test_image_drops_the_build_backend(built: HostBuild) -> None:
    """setuptools only builds the package; the runtime venv is the lock's packages plus model-server."""
    site = next((built.venv / "lib").glob("python3.*/site-packages"))
    assert not list(site.glob("setuptools*")), "the build backend was left in the image"
    assert list(site.glob("model_server-*.dist-info")), "the package is not installed"
