"""Read and write bundle archives in object stores (S3 and S3-compatible, GCS, Azure Blob) with obstore.

The one place that talks to a bucket. It decides which identity signs the requests (and names it in
every refusal), streams a download into the caller's sink with resume and a total deadline, and
uploads an archive for ``model-server push``. Checksums and unpacking stay in fetch.py, shared with
the ``url`` source.

Credentials, in the order each cloud's own SDKs use them, never from the chart's values:

1. an explicit key pair or token: the cloud's usual variables (``AWS_ACCESS_KEY_ID``...), from the
   environment or from files of those names in ``STORAGE_CREDENTIALS_DIR`` (a Secret mounted as files);
2. workload identity, as the platform injects it: EKS IRSA (``AWS_WEB_IDENTITY_TOKEN_FILE`` +
   ``AWS_ROLE_ARN``) or EKS Pod Identity (``AWS_CONTAINER_CREDENTIALS_FULL_URI``), Azure Workload Identity
   (``AZURE_FEDERATED_TOKEN_FILE`` + ``AZURE_CLIENT_ID``), GKE Workload Identity (the metadata server);
3. the node's own identity (EC2 instance profile, Azure managed identity, GCE service account);

or none at all with ``anonymous`` (unsigned requests, for public buckets).
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlsplit

from ..errors import BundleError
from .bucket_uri import BucketLocation

if TYPE_CHECKING:
    from obstore.store import AzureConfig, ClientConfig, GCSConfig, ObjectStore, RetryConfig, S3Config

# The variables each provider's credentials come in, as their SDKs name them. Only these are read from
# STORAGE_CREDENTIALS_DIR: a mounted Secret cannot set anything else (an endpoint, say).
CREDENTIAL_VARIABLES: dict[str, tuple[str, ...]] = {
    "s3": ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"),
    "gcs": ("GOOGLE_SERVICE_ACCOUNT_KEY", "GOOGLE_APPLICATION_CREDENTIALS"),
    "azure": (
        "AZURE_STORAGE_ACCOUNT_KEY",
        "AZURE_STORAGE_SAS_TOKEN",
        "AZURE_CLIENT_ID",
        "AZURE_CLIENT_SECRET",
        "AZURE_TENANT_ID",
    ),
}
_CHUNK = 1024 * 1024
# obstore retries a request that fails before its body arrives (5xx, refused or reset connections,
# timeouts) with backoff and jitter (below). A body that breaks off midway
# is resumed here from the last byte written (each resume is itself retried by obstore), for as long as
# the deadline allows while resumes make progress; this many breaks in a row with no byte gained means
# the object cannot be read from here, and waiting for the deadline would only hide that.
MAX_RESUMES = 5
# obstore's own retries are kept quick (3, from 100 ms) so that a store that stays down is waited for
# here, between 1 and 30 s apart, until FETCH_DEADLINE_SECONDS.
_RETRIES = 3
_FIRST_WAIT_SECONDS = 1.0
_MAX_WAIT_SECONDS = 30.0
_CONNECT_TIMEOUT = timedelta(seconds=10)


class Sink(Protocol):
    """Where the archive's bytes go (fetch.py's ArchiveSink: a file, a digest and the size cap)."""

    size: int

    def expect(self, total: int) -> None: ...

    def write(self, chunk: memoryview) -> None: ...

    def restart(self) -> None: ...


@dataclass(frozen=True)
class StoreOptions:
    """How to reach the store; everything but the credentials, which come from the environment."""

    # S3-compatible stores, emulators, sovereign clouds: the service's base URL.
    endpoint: str | None = None
    # S3 only; unset, AWS_REGION / AWS_DEFAULT_REGION, else us-east-1.
    region: str | None = None
    # S3 only: None picks virtual-hosted requests for AWS and path-style ones with an endpoint.
    path_style: bool | None = None
    anonymous: bool = False
    credentials_dir: Path | None = None
    # Total time for the whole download or upload, retries and resumes included.
    deadline_seconds: float = 900.0
    # A connection that sends nothing for this long is dropped and the transfer resumed.
    stall_seconds: float = 30.0


@dataclass(frozen=True)
class Store:
    store: ObjectStore
    location: BucketLocation
    # Who signs the requests, for messages: never a secret, at most a key id or an account name.
    identity: str
    where: str


def open_store(
    location: BucketLocation, options: StoreOptions, environ: Mapping[str, str] | None = None
) -> Store:
    """Build the obstore client for ``location`` with the identity the environment provides."""
    import os

    from obstore.store import AzureStore, GCSStore, S3Store

    env = dict(os.environ if environ is None else environ)
    creds = _credentials(location.provider, env, options.credentials_dir)
    client: ClientConfig = {
        "connect_timeout": _CONNECT_TIMEOUT,
        # One request may take the whole deadline (a large archive on a slow link); a stalled one is
        # caught by read_timeout instead.
        "timeout": timedelta(seconds=options.deadline_seconds),
        "read_timeout": timedelta(seconds=options.stall_seconds),
    }
    if options.endpoint:
        if urlsplit(options.endpoint).scheme not in ("http", "https"):
            raise BundleError(f"endpoint {options.endpoint!r} must be an http:// or https:// URL")
        # Plain HTTP only when the operator names an http:// endpoint (an in-cluster store, an emulator).
        client["allow_http"] = options.endpoint.startswith("http://")
    retry: RetryConfig = {
        "max_retries": _RETRIES,
        "retry_timeout": timedelta(seconds=options.deadline_seconds),
        "backoff": {"init_backoff": timedelta(milliseconds=100), "max_backoff": timedelta(seconds=1)},
    }
    store: ObjectStore
    if location.provider == "s3":
        s3, identity = _s3_config(creds, env, options)
        where = options.endpoint or "AWS S3"
        store = S3Store(location.bucket, config=s3, client_options=client, retry_config=retry)
    elif location.provider == "gcs":
        gcs, identity = _gcs_config(creds, options)
        where = options.endpoint or "Google Cloud Storage"
        store = GCSStore(location.bucket, config=gcs, client_options=client, retry_config=retry)
    else:
        assert location.account is not None  # bucket_uri.parse requires it for Azure
        azure, identity = _azure_config(creds, env, location.account, options)
        where = options.endpoint or f"https://{location.account}.blob.core.windows.net"
        store = AzureStore(location.bucket, config=azure, client_options=client, retry_config=retry)
    return Store(store, location, identity, where)


def download(location: BucketLocation, options: StoreOptions, sink: Sink) -> str:
    """Stream the object into ``sink``, resuming a broken stream; returns the identity used."""
    import obstore
    from obstore.exceptions import PreconditionError

    s = open_store(location, options)
    deadline = time.monotonic() + options.deadline_seconds
    etag: str | None = None
    total: int | None = None
    breaks = stuck = 0
    progress = -1
    wait = _FIRST_WAIT_SECONDS
    while True:
        get_options: dict[str, Any] = {}
        if sink.size:
            get_options["range"] = {"offset": sink.size}
        if etag:
            # A resume must continue the same object: if it was replaced meanwhile, start over.
            get_options["if_match"] = etag
        try:
            result = obstore.get(s.store, location.key, options=get_options)  # type: ignore[arg-type]
        except PreconditionError:
            if time.monotonic() > deadline:
                raise BundleError(
                    f"cannot download {location.uri}: it kept changing while being read, until "
                    f"FETCH_DEADLINE_SECONDS ({options.deadline_seconds:g} s)"
                ) from None
            sink.restart()
            etag = total = None
            continue
        except Exception as e:  # noqa: BLE001 - obstore raises its own and built-in errors
            if not _transient(e) or time.monotonic() + wait > deadline:
                raise _refusal(s, e, "download") from None
            # The store is down or overloaded past obstore's quick retries: wait longer, until the
            # deadline, since it may be restarting.
            time.sleep(wait)
            wait = min(2 * wait, _MAX_WAIT_SECONDS)
            continue
        wait = _FIRST_WAIT_SECONDS
        if total is None:
            meta = result.meta
            total, etag = meta["size"], meta["e_tag"]
            sink.expect(total)
        try:
            for chunk in result.stream(min_chunk_size=_CHUNK):
                sink.write(memoryview(chunk))
                if time.monotonic() > deadline:
                    raise BundleError(
                        f"cannot download {location.uri}: not done after FETCH_DEADLINE_SECONDS "
                        f"({options.deadline_seconds:g} s), {sink.size} of {total} bytes received"
                    )
            if sink.size == total:
                return s.identity
            broken = f"the stream ended after {sink.size} of {total} bytes"
        except BundleError:
            raise
        except Exception as e:  # noqa: BLE001 - a broken or stalled body surfaces as any of several errors
            broken = _one_line(e)
        breaks += 1
        stuck = 0 if sink.size > progress else stuck + 1
        progress = max(progress, sink.size)
        if stuck > MAX_RESUMES or time.monotonic() > deadline:
            why = (
                f"not done after FETCH_DEADLINE_SECONDS ({options.deadline_seconds:g} s)"
                if stuck <= MAX_RESUMES
                else f"{stuck} times in a row without progress"
            )
            raise BundleError(
                f"cannot download {location.uri} from {s.where}: the transfer broke off {breaks} times, "
                f"{why}, last at {sink.size} of {total} bytes ({broken})"
            )


def upload(location: BucketLocation, options: StoreOptions, archive: Path) -> str:
    """Write ``archive`` to ``location`` (multipart past 5 MiB); returns the identity used."""
    import obstore

    if options.anonymous:
        # A bucket anyone may write to serves anyone's model; and obstore would still sign a GCS upload,
        # asking the metadata server for a token.
        raise BundleError("push needs credentials: anonymous writes are not supported")
    s = open_store(location, options)
    try:
        with open(archive, "rb") as f:
            obstore.put(s.store, location.key, f, attributes={"Content-Type": "application/gzip"})
    except Exception as e:  # noqa: BLE001 - obstore raises its own and built-in errors
        raise _refusal(s, e, "upload") from None
    return s.identity


# ---- errors ---------------------------------------------------------------------------------------


def _refusal(s: Store, e: BaseException, action: str) -> BundleError:
    """One line a user can act on, naming the object, the store and the identity used."""
    from obstore.exceptions import PermissionDeniedError, UnauthenticatedError

    loc = s.location
    kind = "container" if loc.provider == "azure" else "bucket"
    if isinstance(e, PermissionDeniedError | UnauthenticatedError):
        return BundleError(
            f"access denied to {loc.uri} at {s.where} for {s.identity}: give that identity read "
            f"access to the {kind}, or name the right credentials ({_one_line(e)})"
            if action == "download"
            else f"access denied writing {loc.uri} at {s.where} for {s.identity} ({_one_line(e)})"
        )
    if isinstance(e, FileNotFoundError):
        if _says_no_bucket(str(e)) or not _bucket_exists(s):
            return BundleError(f"no such {kind} {loc.bucket!r} at {s.where} (looking for {loc.uri})")
        # GCS is not listed (see _bucket_exists), so a missing GCS bucket may land here.
        maybe = f", or no {kind} {loc.bucket!r}" if loc.provider == "gcs" else ""
        return BundleError(f"no such object {loc.key!r} in {kind} {loc.bucket!r} at {s.where}{maybe}")
    text = _one_line(e)
    if _unreachable(text):
        return BundleError(f"cannot reach {s.where} to {action} {loc.uri}: {text}")
    return BundleError(f"cannot {action} {loc.uri} at {s.where}: {text}")


def _says_no_bucket(text: str) -> bool:
    return any(word in text for word in ("NoSuchBucket", "ContainerNotFound", "bucket does not exist"))


def _bucket_exists(s: Store) -> bool:
    """False only when listing says the bucket is missing; when listing is not allowed either, we
    cannot tell (and say 'no such object'). Not asked of GCS: obstore 0.12 still fetches a token from
    the metadata server for some anonymous GCS requests (an upload does), so no listing is risked."""
    import obstore

    if s.location.provider == "gcs":
        return True
    try:
        next(iter(obstore.list(s.store, prefix=s.location.key, chunk_size=1)), None)
    except FileNotFoundError:
        return False
    except Exception as e:  # noqa: BLE001 - anything else: not evidence of a missing bucket
        return not _says_no_bucket(str(e))
    return True


def _transient(e: BaseException) -> bool:
    """Worth waiting for: a refused, reset or timed-out connection, a 5xx. Not: a 4xx (a wrong
    request or identity does not fix itself), a configuration error."""
    from obstore.exceptions import GenericError

    if not isinstance(e, GenericError | OSError) or isinstance(e, FileNotFoundError):
        return False
    return "status code: 4" not in str(e)


def _unreachable(text: str) -> bool:
    lowered = text.lower()
    return any(
        phrase in lowered
        for phrase in ("connection refused", "error sending request", "dns error", "timed out", "connect")
    )


def _one_line(e: BaseException) -> str:
    """obstore's first line says what failed (the request, the retries, the status); the rest is a Rust
    debug dump of the same, or the server's XML body."""
    text = str(e).split("\n", 1)[0].strip() or type(e).__name__
    # Azure and S3 append the response's XML body; its gist is already in the status.
    text = text.split(": <?xml", 1)[0]
    # The root cause sits in the dump: keep the few words that tell a user which network error it was.
    for cause in ("Connection refused", "dns error", "timed out", "Connection reset", "certificate"):
        if cause.lower() in str(e).lower() and cause.lower() not in text.lower():
            text = f"{text} ({cause})"
            break
    return text if len(text) <= 500 else text[:497] + "..."


# ---- credentials ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Credential:
    value: str
    source: str  # "env AWS_ACCESS_KEY_ID" or "file /var/run/.../AWS_ACCESS_KEY_ID"


def _credentials(provider: str, env: Mapping[str, str], folder: Path | None) -> dict[str, _Credential]:
    """The provider's credential variables: from files in ``folder`` first, else from ``env``."""
    found: dict[str, _Credential] = {}
    for name in CREDENTIAL_VARIABLES[provider]:
        path = folder / name if folder is not None else None
        if path is not None and path.is_file():
            value = path.read_text().strip()
            if value:
                found[name] = _Credential(value, f"file {path}")
                continue
        if env.get(name, "").strip():
            found[name] = _Credential(env[name].strip(), f"env {name}")
    if folder is not None and not folder.is_dir():
        raise BundleError(f"STORAGE_CREDENTIALS_DIR {folder} is not a directory")
    return found


def _s3_config(
    creds: Mapping[str, _Credential], env: Mapping[str, str], options: StoreOptions
) -> tuple[S3Config, str]:
    config: S3Config = {}
    if options.region:
        config["region"] = options.region
    path_style = options.path_style if options.path_style is not None else bool(options.endpoint)
    if options.endpoint:
        config["endpoint"] = options.endpoint
    # Virtual-hosted with an endpoint: obstore sends requests to the endpoint as given, which must then
    # name the bucket's own host (https://<bucket>.<store>).
    config["virtual_hosted_style_request"] = not path_style
    if options.anonymous:
        config["skip_signature"] = True
        return config, "an anonymous client (unsigned requests)"
    key_id, secret = creds.get("AWS_ACCESS_KEY_ID"), creds.get("AWS_SECRET_ACCESS_KEY")
    if key_id or secret:
        if not (key_id and secret):
            missing = "AWS_SECRET_ACCESS_KEY" if key_id else "AWS_ACCESS_KEY_ID"
            raise BundleError(
                f"{missing} is missing: an S3 access key needs both AWS_ACCESS_KEY_ID and its secret"
            )
        config["access_key_id"] = key_id.value
        config["secret_access_key"] = secret.value
        if token := creds.get("AWS_SESSION_TOKEN"):
            config["session_token"] = token.value
        return config, f"access key {key_id.value} ({key_id.source})"
    if env.get("AWS_WEB_IDENTITY_TOKEN_FILE") and env.get("AWS_ROLE_ARN"):
        return config, f"role {env['AWS_ROLE_ARN']} by web identity (EKS IRSA, AWS_WEB_IDENTITY_TOKEN_FILE)"
    if env.get("AWS_CONTAINER_CREDENTIALS_FULL_URI") or env.get("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"):
        return config, "the pod's EKS Pod Identity association (AWS_CONTAINER_CREDENTIALS_FULL_URI)"
    return config, "the node's EC2 instance profile (no key, IRSA or Pod Identity configured)"


def _gcs_config(creds: Mapping[str, _Credential], options: StoreOptions) -> tuple[GCSConfig, str]:
    config: GCSConfig = {}
    if options.endpoint:
        config["base_url"] = options.endpoint.rstrip("/")
    if options.anonymous:
        config["skip_signature"] = True
        return config, "an anonymous client (unsigned requests)"
    key = creds.get("GOOGLE_SERVICE_ACCOUNT_KEY")
    if key is None and (path := creds.get("GOOGLE_APPLICATION_CREDENTIALS")):
        try:
            key = _Credential(Path(path.value).read_text(), f"{path.source} -> {path.value}")
        except OSError as e:
            raise BundleError(f"cannot read GOOGLE_APPLICATION_CREDENTIALS ({path.source}): {e}") from None
    if key is not None:
        try:
            parsed = json.loads(key.value)
        except ValueError:
            raise BundleError(f"the Google service account key ({key.source}) is not JSON") from None
        if not isinstance(parsed, dict) or parsed.get("type") not in (None, "service_account"):
            kind = parsed.get("type") if isinstance(parsed, dict) else type(parsed).__name__
            raise BundleError(
                f"the Google credentials ({key.source}) are of type {kind!r}: only a service account key "
                "works here; for GKE, use Workload Identity instead of a key"
            )
        config["service_account_key"] = key.value
        return config, f"service account {parsed.get('client_email') or '(no client_email)'} ({key.source})"
    return config, "the metadata server's service account (GKE Workload Identity, or the node's)"


def _azure_config(
    creds: Mapping[str, _Credential], env: Mapping[str, str], account: str, options: StoreOptions
) -> tuple[AzureConfig, str]:
    config: AzureConfig = {"account_name": account}
    if options.endpoint:
        # The account's blob endpoint: https://<account>.blob.core.<sovereign cloud>, or an emulator's
        # http://host:port/<account> (Azurite puts the account in the path).
        config["endpoint"] = options.endpoint.rstrip("/")
    if options.anonymous:
        config["skip_signature"] = True
        return config, "an anonymous client (unsigned requests)"
    if key := creds.get("AZURE_STORAGE_ACCOUNT_KEY"):
        config["account_key"] = key.value
        return config, f"the account key of storage account {account} ({key.source})"
    if sas := creds.get("AZURE_STORAGE_SAS_TOKEN"):
        config["sas_key"] = sas.value.lstrip("?")
        return config, f"a SAS token ({sas.source})"
    client_id, tenant = creds.get("AZURE_CLIENT_ID"), creds.get("AZURE_TENANT_ID")
    if secret := creds.get("AZURE_CLIENT_SECRET"):
        if not (client_id and tenant):
            raise BundleError("AZURE_CLIENT_SECRET needs AZURE_CLIENT_ID and AZURE_TENANT_ID too")
        config["client_id"], config["client_secret"] = client_id.value, secret.value
        config["tenant_id"] = tenant.value
        return config, f"service principal {client_id.value} with a client secret ({secret.source})"
    if env.get("AZURE_FEDERATED_TOKEN_FILE") and client_id:
        return config, f"Azure Workload Identity, client {client_id.value} (AZURE_FEDERATED_TOKEN_FILE)"
    return config, "the node's managed identity (no key, SAS token or workload identity configured)"
