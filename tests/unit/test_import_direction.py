"""The server package's wings import one way: transports (http, grpc) -> protocols -> (shared types) <-
runtime -> bundle. The two transports do not import each other.

Read from the source (every import statement, also those inside functions), so a new module or a new
import that goes against the direction fails here with the file and line. The light modules are also
imported in a fresh interpreter, to catch what they pull in indirectly.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import model_server

PACKAGE = Path(model_server.__file__).resolve().parent

# The shared modules every wing may import: value types, the input schema, errors, settings, metrics,
# logging, authentication. They import only each other.
SHARED = {"errors", "settings", "types", "features", "metrics", "logs", "auth"}
# Entry points: the command line (with `imports` and its generated `scipy_stats_names`, what `serve`
# does before anything else is imported) and the demo bundles sit above every wing.
ENTRY = {"cli", "demo", "imports", "scipy_stats_names"}
# Which layers each layer may import.
ALLOWED = {
    "shared": {"shared"},
    "bundle": {"shared", "bundle"},
    "protocols": {"shared", "protocols"},
    "runtime": {"shared", "bundle", "runtime"},
    "http": {"shared", "bundle", "protocols", "runtime", "http"},
    "grpc": {"shared", "bundle", "protocols", "runtime", "grpc"},
    "entry": {"shared", "bundle", "protocols", "runtime", "http", "grpc", "entry"},
}
WEB_FRAMEWORK = {"fastapi", "starlette", "uvicorn", "pydantic"}
# The gRPC runtime and its services; the protocol codec uses only protobuf's message classes.
GRPC_LIBRARIES = {"grpc", "grpc_health", "grpc_reflection"}
# Modules that must load without the model's libraries: codecs are pure functions over light types,
# and metadata.json is read without scikit-learn (the /docs example, `model-server fetch`).
LIGHT = [
    "model_server.types",
    "model_server.features",
    "model_server.protocols.named",
    "model_server.protocols.v1",
    "model_server.protocols.v2",
    "model_server.protocols.v2_grpc",
    "model_server.bundle.metadata",
    "model_server.bundle.fetch",
]
HEAVY = [
    "sklearn",
    "skops",
    "scipy",
    "model_server.runtime",
    "model_server.bundle.load",
    *WEB_FRAMEWORK,
    *GRPC_LIBRARIES,
]


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def layer(module: str) -> str:
    parts = module.split(".")
    if len(parts) == 1:
        return "shared"  # the package itself: __version__
    if parts[1] in ("bundle", "protocols", "runtime", "http", "grpc"):
        return parts[1]
    if parts[1] in SHARED:
        return "shared"
    if parts[1] in ENTRY:
        return "entry"
    raise AssertionError(
        f"{module} belongs to no layer: put it in a wing, or add it to SHARED or ENTRY in this test"
    )


def imports(path: Path, module: str | None = None) -> list[tuple[int, str]]:
    """(line, absolute module name) for every import in the file (``module``: its dotted name)."""
    module = module or module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            # `from . import x` / `from .bundle import load` may name submodules: check those too.
            found.append((node.lineno, target))
            found += [
                (node.lineno, f"{target}.{a.name}") for a in node.names if _is_module(f"{target}.{a.name}")
            ]
    return found


def _is_module(name: str) -> bool:
    if not name.startswith("model_server."):
        return False
    rel = Path(*name.split(".")[1:])
    return (PACKAGE / rel).with_suffix(".py").is_file() or (PACKAGE / rel / "__init__.py").is_file()


SOURCES = sorted(PACKAGE.rglob("*.py"))


def test_the_package_has_its_wings() -> None:
    wings = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()}
    assert wings == {"bundle", "protocols", "runtime", "http", "grpc"}
    assert len(SOURCES) > 30


def wrong_imports(path: Path, module: str | None = None) -> list[str]:
    source = module or module_name(path)
    shown = path.relative_to(PACKAGE) if path.is_relative_to(PACKAGE) else path.name
    return [
        f"{shown}:{line} ({layer(source)}) imports {target}"
        for line, target in imports(path, source)
        if (target == "model_server" or target.startswith("model_server."))
        and layer(target) not in ALLOWED[layer(source)]
    ]


def test_no_module_imports_against_the_direction() -> None:
    wrong = [w for path in SOURCES for w in wrong_imports(path)]
    assert not wrong, "imports against http -> protocols -> types <- runtime -> bundle:\n" + "\n".join(wrong)


def test_only_the_http_layer_imports_the_web_framework() -> None:
    wrong = [
        f"{path.relative_to(PACKAGE)}:{line} imports {target}"
        for path in SOURCES
        if layer(module_name(path)) != "http"
        for line, target in imports(path)
        if target.split(".")[0] in WEB_FRAMEWORK
    ]
    assert not wrong, "\n".join(wrong)


def test_only_the_grpc_transport_and_the_command_line_import_grpc() -> None:
    wrong = [
        f"{path.relative_to(PACKAGE)}:{line} imports {target}"
        for path in SOURCES
        if layer(module_name(path)) not in ("grpc", "entry")
        for line, target in imports(path)
        if target.split(".")[0] in GRPC_LIBRARIES
    ]
    assert not wrong, "\n".join(wrong)
    grpc_modules = [p for p in SOURCES if layer(module_name(p)) == "grpc"]
    assert any(t.split(".")[0] == "grpc" for p in grpc_modules for _, t in imports(p))


def test_light_modules_load_without_the_model_libraries() -> None:
    script = (
        "import sys\n"
        f"for m in {LIGHT!r}: __import__(m)\n"
        f"print(' '.join(sorted(h for h in {HEAVY!r} if h in sys.modules)))\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_the_check_sees_imports_against_the_direction(tmp_path: Path) -> None:
    """Relative imports, imports inside functions and `from . import module` are all resolved."""
    codec = tmp_path / "codec.py"
    codec.write_text(
        "from ..types import Prediction\n"
        "from ..runtime.lifecycle import ModelRuntime\n"
        "def f():\n    from .. import http\n"
    )
    assert wrong_imports(codec, "model_server.protocols.codec") == [
        "codec.py:2 (protocols) imports model_server.runtime.lifecycle",
        "codec.py:4 (protocols) imports model_server.http",
    ]
    loader = tmp_path / "loader.py"
    loader.write_text("from ..protocols import v2\nfrom . import trust\n")
    assert wrong_imports(loader, "model_server.bundle.loader") == [
        "loader.py:1 (bundle) imports model_server.protocols",
        "loader.py:1 (bundle) imports model_server.protocols.v2",
    ]
