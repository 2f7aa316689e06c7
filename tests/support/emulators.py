"""The three real storage servers the bucket-source tests run, each a process on 127.0.0.1.

- SeaweedFS's S3 gateway (``weed server -s3``), with an identity file: ``admin`` may do everything,
  ``reader`` may only read the ``models`` bucket, anonymous requests may only read ``public``;
- Azurite's blob service, with its well-known development account ``devstoreaccount1``;
- fake-gcs-server, which checks no credentials at all (so GCS access-denied is not testable here).

``make tools`` builds or installs all three into .tools/bin; a missing one fails the tests. Buckets
and containers are created through each server's own API; objects are written with obstore, the same
client the server uses, or with ``model-server push``.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from email.utils import formatdate
from pathlib import Path
from typing import Any

from .serverproc import free_port
from .tools import tool

S3_ADMIN = ("admin-key-id", "admin-secret-key-0123456789")
S3_READER = ("reader-key-id", "reader-secret-key-0123456789")
AZURITE_ACCOUNT = "devstoreaccount1"
# Azurite's published development key (Microsoft's docs), not a secret.
AZURITE_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


def _wait_port(port: int, proc: subprocess.Popen[bytes], log: Path, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return
        time.sleep(0.2)
    raise RuntimeError(f"port {port} not open after {seconds} s:\n{log.read_text()[-3000:]}")


@dataclass
class Emulator:
    name: str
    endpoint: str
    proc: subprocess.Popen[bytes]
    log: Path
    # The environment a `model-server` process needs to sign as the test's privileged identity.
    admin_env: dict[str, str] = field(default_factory=dict)
    # Extra CLI options every model-server call against this server needs (endpoint, account).
    cli_options: list[str] = field(default_factory=list)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=3)
            except subprocess.TimeoutExpired:
                # SeaweedFS ignores SIGTERM for up to a minute: nothing of value is lost by not waiting.
                self.proc.kill()
                self.proc.wait(timeout=10)


# ---- SeaweedFS ------------------------------------------------------------------------------------


def start_seaweedfs(workdir: Path) -> Emulator:
    workdir.mkdir(parents=True, exist_ok=True)
    config = {
        "identities": [
            {"name": "admin", "credentials": [{"accessKey": S3_ADMIN[0], "secretKey": S3_ADMIN[1]}],
             "actions": ["Admin", "Read", "List", "Tagging", "Write"]},
            {"name": "reader", "credentials": [{"accessKey": S3_READER[0], "secretKey": S3_READER[1]}],
             "actions": ["Read:models", "List:models"]},
            {"name": "anonymous", "actions": ["Read:public", "List:public"]},
        ]
    }  # fmt: skip
    (workdir / "s3.json").write_text(json.dumps(config))
    ports = {name: free_port() for name in ("master", "volume", "filer", "s3")}
    grpc = {name: free_port() for name in ports}
    args = [
        tool("weed"),
        "server",
        f"-dir={workdir}",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        # Nothing leaves the machine: no usage reports.
        "-master.telemetry=false",
        "-master.volumeSizeLimitMB=64",
        # Each bucket grows its own volumes; 64 MiB each, not preallocated, holds what the tests write.
        "-volume.max=32",
        "-s3",
        f"-s3.config={workdir / 's3.json'}",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        "-s3.iam=false",
        *(f"-{name}.port={port}" for name, port in ports.items()),
        *(f"-{name}.port.grpc={port}" for name, port in grpc.items()),
    ]
    log = workdir / "weed.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, cwd=workdir)
    emu = Emulator(
        "s3",
        f"http://127.0.0.1:{ports['s3']}",
        proc,
        log,
        admin_env={"AWS_ACCESS_KEY_ID": S3_ADMIN[0], "AWS_SECRET_ACCESS_KEY": S3_ADMIN[1]},
        cli_options=["--endpoint", f"http://127.0.0.1:{ports['s3']}"],
    )
    try:
        _wait_port(ports["s3"], proc, log)
        # host:port.grpcPort, SeaweedFS's notation for a server whose gRPC port is not port + 10000.
        emu.master = f"127.0.0.1:{ports['master']}.{grpc['master']}"  # type: ignore[attr-defined]
        for bucket in ("models", "public", "private"):
            _wait_for(lambda b=bucket: s3_create_bucket(emu, b), f"create bucket {bucket}", log)
    except BaseException:
        emu.stop()
        raise
    return emu


def s3_store(emu: Emulator, bucket: str, key: tuple[str, str] = S3_ADMIN) -> Any:
    from obstore.store import S3Store

    return S3Store(
        bucket,
        endpoint=emu.endpoint,
        region="us-east-1",
        access_key_id=key[0],
        secret_access_key=key[1],
        virtual_hosted_style_request=False,
        client_options={"allow_http": True},
        retry_config={"max_retries": 2},
    )


def s3_create_bucket(emu: Emulator, bucket: str) -> None:
    """Through SeaweedFS's own shell (S3's CreateBucket would need a SigV4 signer here)."""
    master = emu.master  # type: ignore[attr-defined]
    proc = subprocess.run(
        [tool("weed"), "shell", f"-master={master}"],
        input=f"s3.bucket.create -name {bucket}\nexit\n",
        capture_output=True,
        text=True,
        timeout=60,
    )
    out = proc.stdout + proc.stderr
    if proc.returncode != 0 or ("error" in out.lower() and "already exist" not in out.lower()):
        raise RuntimeError(out)


# ---- Azurite --------------------------------------------------------------------------------------


def start_azurite(workdir: Path) -> Emulator:
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    log = workdir / "azurite.log"
    args = [
        tool("azurite-blob"),
        "--blobHost",
        "127.0.0.1",
        "--blobPort",
        str(port),
        "--silent",
        "--skipApiVersionCheck",
        "--inMemoryPersistence",
        # Azurite reports usage to Microsoft unless told not to: nothing leaves the machine.
        "--disableTelemetry",
    ]
    # Its own temp folder: where Azurite's telemetry client would buffer what it failed to send, so a
    # test can check that nothing was.
    env = {**os.environ, "TMPDIR": str(workdir)}
    with open(log, "wb") as out:
        proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, cwd=workdir, env=env)
    endpoint = f"http://127.0.0.1:{port}/{AZURITE_ACCOUNT}"
    emu = Emulator(
        "azure",
        endpoint,
        proc,
        log,
        admin_env={"AZURE_STORAGE_ACCOUNT_KEY": AZURITE_KEY},
        cli_options=["--endpoint", endpoint, "--account", AZURITE_ACCOUNT],
    )
    try:
        _wait_port(port, proc, log)
        for container in ("models", "public", "private"):
            create = lambda c=container: azure_create_container(emu, c)  # noqa: E731
            _wait_for(create, f"create container {container}", log)
    except BaseException:
        emu.stop()
        raise
    return emu


def azure_store(emu: Emulator, container: str, key: str = AZURITE_KEY) -> Any:
    from obstore.store import AzureStore

    return AzureStore(
        container,
        account_name=AZURITE_ACCOUNT,
        account_key=key,
        endpoint=emu.endpoint,
        client_options={"allow_http": True},
        retry_config={"max_retries": 2},
    )


def azure_create_container(emu: Emulator, container: str) -> None:
    """Create Container (REST), signed with the account's Shared Key as Azure's docs define it."""
    url = f"{emu.endpoint}/{container}?restype=container"
    headers = {"x-ms-date": formatdate(usegmt=True), "x-ms-version": "2021-08-06"}
    canonical_headers = "".join(f"{k}:{v}\n" for k, v in sorted(headers.items()))
    # Path-style (emulator) URLs carry the account in the path, so it appears twice here.
    resource = f"/{AZURITE_ACCOUNT}/{AZURITE_ACCOUNT}/{container}\nrestype:container"
    to_sign = "PUT\n" + "\n" * 11 + canonical_headers + resource
    mac = hmac.new(base64.b64decode(AZURITE_KEY), to_sign.encode(), hashlib.sha256).digest()
    headers["Authorization"] = f"SharedKey {AZURITE_ACCOUNT}:{base64.b64encode(mac).decode()}"
    request = urllib.request.Request(url, method="PUT", headers=headers)
    try:
        urllib.request.urlopen(request, timeout=10).close()
    except urllib.error.HTTPError as e:
        if e.code != 409:  # 409: it exists already
            raise RuntimeError(f"create container {container}: HTTP {e.code} {e.read()[:500]!r}") from None


def azure_set_public(emu: Emulator, container: str) -> None:
    """Let anonymous clients read blobs of ``container`` (Set Container ACL, x-ms-blob-public-access)."""
    url = f"{emu.endpoint}/{container}?restype=container&comp=acl"
    headers = {
        "x-ms-blob-public-access": "blob",
        "x-ms-date": formatdate(usegmt=True),
        "x-ms-version": "2021-08-06",
    }
    canonical_headers = "".join(f"{k}:{v}\n" for k, v in sorted(headers.items()))
    resource = f"/{AZURITE_ACCOUNT}/{AZURITE_ACCOUNT}/{container}\ncomp:acl\nrestype:container"
    to_sign = "PUT\n" + "\n" * 11 + canonical_headers + resource
    mac = hmac.new(base64.b64decode(AZURITE_KEY), to_sign.encode(), hashlib.sha256).digest()
    headers["Authorization"] = f"SharedKey {AZURITE_ACCOUNT}:{base64.b64encode(mac).decode()}"
    urllib.request.urlopen(urllib.request.Request(url, method="PUT", headers=headers), timeout=10).close()


# ---- fake-gcs-server ------------------------------------------------------------------------------


def start_fake_gcs(workdir: Path) -> Emulator:
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    log = workdir / "fake-gcs.log"
    args = [
        tool("fake-gcs-server"),
        "-scheme",
        "http",
        "-host",
        "127.0.0.1",
        "-port",
        str(port),
        "-backend",
        "memory",
        "-external-url",
        f"http://127.0.0.1:{port}",
        # Without a port, so requests through the tests' fault proxy (another port) match it too.
        "-public-host",
        "127.0.0.1",
        "-log-level",
        "warn",
    ]
    with open(log, "wb") as out:
        proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, cwd=workdir)
    endpoint = f"http://127.0.0.1:{port}"
    emu = Emulator("gcs", endpoint, proc, log, admin_env={}, cli_options=["--endpoint", endpoint])
    try:
        _wait_port(port, proc, log)
        for bucket in ("models", "public"):
            body = json.dumps({"name": bucket}).encode()
            request = urllib.request.Request(
                f"{endpoint}/storage/v1/b?project=test",
                data=body,
                method="POST",
                headers={"Content-Type": "application/json"},
            )
            urllib.request.urlopen(request, timeout=10).close()
    except BaseException:
        emu.stop()
        raise
    return emu


def gcs_upload(emu: Emulator, bucket: str, key: str, data: bytes) -> None:
    """Through the JSON API's media upload: obstore writes with the XML API's PUT, which
    fake-gcs-server accepts only on signed URLs."""
    query = urllib.parse.urlencode({"uploadType": "media", "name": key})
    request = urllib.request.Request(
        f"{emu.endpoint}/upload/storage/v1/b/{bucket}/o?{query}",
        data=data,
        method="POST",
        headers={"Content-Type": "application/gzip"},
    )
    urllib.request.urlopen(request, timeout=30).close()


def gcs_store(emu: Emulator, bucket: str) -> Any:
    from obstore.store import GCSStore

    return GCSStore(
        bucket,
        base_url=emu.endpoint,
        skip_signature=True,
        client_options={"allow_http": True},
        retry_config={"max_retries": 2},
    )


def _wait_for(action: Any, what: str, log: Path, seconds: float = 60) -> None:
    """SeaweedFS and Azurite open their ports before every service behind them is up: retry."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            action()
            return
        except (RuntimeError, OSError, subprocess.TimeoutExpired) as e:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{what}: {e}\n{log.read_text()[-3000:]}") from None
            time.sleep(0.5)
