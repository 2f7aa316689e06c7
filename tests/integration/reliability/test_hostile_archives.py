"""Hostile bundle archives against `model-server fetch`, the chart's init container command.

Each archive is served by a local HTTP server and fetched by the real CLI with the archive's own
sha256 (an attacker who can publish an archive can also publish its checksum: the checksum proves
integrity, not good intent). Each must be refused with a message naming the problem, exit 1 without
a traceback, and leave nothing behind: the test compares every path of a sandbox around the target
directory before and after, and checks the absolute paths the archive aims at.
"""

from __future__ import annotations

import http.server
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from support.hostile import (
    ARTIFACT,
    METADATA,
    GiB,
    MiB,
    Sandbox,
    bundle_members,
    escapes,
    gzip_bomb,
    member,
    pax_bomb,
    sha256,
    tar_gz,
)
from support.paths import ROOT

MODEL_SERVER = ROOT / ".venv" / "bin" / "model-server"


@dataclass
class Served:
    body: bytes
    mode: str = "full"  # full | short (Content-Length says more than is sent) | chunked-short | 404


class ArchiveServer:
    """A loopback HTTP server for test archives, including ones that break off mid-download."""

    def __init__(self) -> None:
        self.files: dict[str, Served] = {}
        files = self.files

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                served = files.get(self.path)
                if served is None or served.mode == "404":
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/gzip")
                body = served.body
                if served.mode == "chunked-short":
                    self.send_header("Transfer-Encoding", "chunked")
                    self.end_headers()
                    half = body[: len(body) // 2]
                    self.wfile.write(b"%x\r\n" % len(body) + half)  # a chunk that never ends
                else:
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body if served.mode == "full" else body[: len(body) // 2])
                self.wfile.flush()
                self.close_connection = True

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def add(self, name: str, body: bytes, mode: str = "full") -> str:
        self.files[f"/{name}"] = Served(body, mode)
        return f"http://127.0.0.1:{self.httpd.server_port}/{name}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="module")
def archive_server() -> Iterator[ArchiveServer]:
    srv = ArchiveServer()
    yield srv
    srv.close()


@dataclass
class FetchResult:
    code: int
    stdout: str
    stderr: str
    max_rss_mib: float


# Runs the CLI as the child of a small fresh Python, which reports the child's peak RSS: measured from
# pytest itself, a forked child's peak would include pytest's own memory from before the exec.
_LAUNCHER = """
import os, sys
pid = os.fork()
if pid == 0:
    os.execv(sys.argv[1], sys.argv[1:])
_, status, usage = os.wait4(pid, 0)
sys.stderr.write(f"\\nmax-rss-kib={usage.ru_maxrss}\\n")
sys.exit(os.waitstatus_to_exitcode(status))
"""


def run_fetch(url: str, digest: str, dest: Path) -> FetchResult:
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    args = [str(MODEL_SERVER), "fetch", "--url", url, "--sha256", digest, "--dest", str(dest)]
    # A hang is caught by pytest-timeout.
    proc = subprocess.run([sys.executable, "-c", _LAUNCHER, *args], capture_output=True, text=True, env=env)
    err, _, rss = proc.stderr.rpartition("\nmax-rss-kib=")
    return FetchResult(proc.returncode, proc.stdout, err, int(rss) / 1024)


@pytest.fixture
def sandbox(tmp_path: Path) -> Sandbox:
    return Sandbox(tmp_path / "sandbox")


def assert_refused(result: FetchResult, *phrases: str) -> None:
    assert result.code == 1, f"fetch should fail:\n{result.stdout}\n{result.stderr}"
    assert "Traceback" not in result.stderr, result.stderr
    assert result.stderr.startswith("model-server fetch: "), result.stderr
    for phrase in phrases:
        assert phrase.lower() in result.stderr.lower(), result.stderr


def test_a_good_archive_unpacks_exactly_the_bundle(
    archive_server: ArchiveServer, sandbox: Sandbox, iris_bundle: Path
) -> None:
    """The control: the same server, CLI and checks accept a real bundle archive."""
    body = tar_gz(bundle_members(iris_bundle))
    result = run_fetch(archive_server.add("good.tar.gz", body), sha256(body), sandbox.dest)
    assert result.code == 0, result.stderr
    assert {p.name for p in sandbox.dest.iterdir()} == {ARTIFACT, METADATA}
    for name in (ARTIFACT, METADATA):
        assert (sandbox.dest / name).read_bytes() == (iris_bundle / name).read_bytes()


@pytest.mark.parametrize(
    "case",
    [
        "dot-dot",
        "dot-dot-nested",
        "absolute-path",
        "symlink-then-write",
        "symlink-relative",
        "hardlink-outside",
        "device-node",
        "directory",
        "extra-file",
        "missing-metadata",
    ],
)
def test_archives_that_escape_or_smuggle_are_refused(
    case: str, archive_server: ArchiveServer, sandbox: Sandbox, iris_bundle: Path
) -> None:
    members, phrases, absent = escapes(sandbox, iris_bundle)[case]
    body = tar_gz(members)  # type: ignore[arg-type]
    result = run_fetch(archive_server.add(f"{case}.tar.gz", body), sha256(body), sandbox.dest)
    assert_refused(result, *phrases)
    sandbox.assert_untouched(absent)


def test_a_decompression_bomb_is_refused_before_it_is_written(
    archive_server: ArchiveServer, sandbox: Sandbox
) -> None:
    body = gzip_bomb(ARTIFACT, 3 * GiB)
    assert len(body) < 4 * MiB  # a few MiB that would unpack to 3 GiB
    result = run_fetch(archive_server.add("bomb.tar.gz", body), sha256(body), sandbox.dest)
    assert_refused(result, "model.skops", "bytes", "decompression bomb")
    sandbox.assert_untouched()
    assert result.max_rss_mib < 256, f"fetch used {result.max_rss_mib:.0f} MiB on a bomb"


def test_a_header_bomb_is_refused_without_reading_it_into_memory(
    archive_server: ArchiveServer, sandbox: Sandbox
) -> None:
    body = pax_bomb(1 * GiB)
    result = run_fetch(archive_server.add("pax-bomb.tar.gz", body), sha256(body), sandbox.dest)
    assert_refused(result, "decompression bomb")
    sandbox.assert_untouched()
    assert result.max_rss_mib < 256, f"fetch used {result.max_rss_mib:.0f} MiB on a header bomb"


@pytest.mark.parametrize("mode", ["short", "chunked-short"])
def test_a_truncated_download_is_refused(
    mode: str, archive_server: ArchiveServer, sandbox: Sandbox, iris_bundle: Path
) -> None:
    body = tar_gz(bundle_members(iris_bundle))
    # The checksum is the full archive's: what an operator pinned. The download breaks off halfway.
    result = run_fetch(archive_server.add(f"{mode}.tar.gz", body, mode), sha256(body), sandbox.dest)
    assert_refused(result, "download", "incomplete")
    sandbox.assert_untouched()


def test_a_truncated_archive_with_a_matching_checksum_is_refused(
    archive_server: ArchiveServer, sandbox: Sandbox, iris_bundle: Path
) -> None:
    body = tar_gz(bundle_members(iris_bundle))
    cut = body[: len(body) * 2 // 3]  # someone pinned the checksum of a broken upload
    result = run_fetch(archive_server.add("cut.tar.gz", cut), sha256(cut), sandbox.dest)
    assert_refused(result, "not a readable .tar.gz")
    sandbox.assert_untouched()


def test_a_checksum_mismatch_is_refused_before_unpacking(
    archive_server: ArchiveServer, sandbox: Sandbox, iris_bundle: Path
) -> None:
    body = tar_gz([*bundle_members(iris_bundle), member("../outside/evil", b"x")])
    pinned = sha256(tar_gz(bundle_members(iris_bundle)))
    result = run_fetch(archive_server.add("swapped.tar.gz", body), pinned, sandbox.dest)
    assert_refused(result, f"expected {pinned}", "refusing to unpack")
    sandbox.assert_untouched((sandbox.outside / "evil",))


@pytest.mark.parametrize("problem", ["404", "refused"])
def test_an_unreachable_archive_is_a_clear_error(
    problem: str, archive_server: ArchiveServer, sandbox: Sandbox
) -> None:
    if problem == "404":
        url = archive_server.add("gone.tar.gz", b"", "404")
    else:
        from support.serverproc import free_port

        url = f"http://127.0.0.1:{free_port()}/bundle.tar.gz"
    result = run_fetch(url, "0" * 64, sandbox.dest)
    assert_refused(result, "cannot download", url)
    sandbox.assert_untouched()
