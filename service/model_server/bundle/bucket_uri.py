"""Where a bundle archive lives in an object store: the URI forms users write, parsed into one location.

Pure string work (no I/O), shared by ``model-server fetch --bucket`` and ``model-server push``:

- ``s3://<bucket>/<key>``: AWS S3 and every S3-compatible store (the endpoint is an option);
- ``gs://<bucket>/<key>`` or ``https://storage.googleapis.com/<bucket>/<key>``: Google Cloud Storage;
- ``az://<container>/<key>`` (``azure://`` too; the storage account is an option) or
  ``https://<account>.blob.core.windows.net/<container>/<key>``: Azure Blob Storage.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Literal
from urllib.parse import unquote, urlsplit

from ..errors import BundleError

Provider = Literal["s3", "gcs", "azure"]

_SCHEMES: dict[str, Provider] = {"s3": "s3", "gs": "gcs", "az": "azure", "azure": "azure"}
_AZURE_HOST = re.compile(r"^(?P<account>[a-z0-9]{3,24})\.blob\.core\.windows\.net$")
_GCS_HOST = "storage.googleapis.com"
# Bucket and container names across the three clouds: lower-case letters, digits, '-', '.', '_'
# (GCS allows '_'), 3-63 characters. Anything else is a typo, refused before a request is made.
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9._-]{1,61}[a-z0-9]$")
_ACCOUNT = re.compile(r"^[a-z0-9]{3,24}$")
FORMS = (
    "s3://<bucket>/<key>, gs://<bucket>/<key>, az://<container>/<key> or "
    "https://<account>.blob.core.windows.net/<container>/<key>"
)


@dataclass(frozen=True)
class BucketLocation:
    """One object: the provider, its bucket (an Azure container), the key, and for Azure the account."""

    provider: Provider
    bucket: str
    key: str
    account: str | None = None

    @property
    def uri(self) -> str:
        """The canonical URI, as messages and the chart values show it."""
        scheme = {"s3": "s3", "gcs": "gs", "azure": "az"}[self.provider]
        return f"{scheme}://{self.bucket}/{self.key}"

    @property
    def is_folder(self) -> bool:
        return self.key == "" or self.key.endswith("/")

    def in_folder(self, name: str) -> BucketLocation:
        """``name`` inside this location when it names a folder (``s3://b/models/``), else itself."""
        return replace(self, key=f"{self.key}{name}") if self.is_folder else self


def is_bucket_uri(uri: str) -> bool:
    try:
        parse(uri, allow_folder=True)
    except BundleError:
        return False
    return True


def parse(uri: str, account: str | None = None, *, allow_folder: bool = False) -> BucketLocation:
    """Parse ``uri``; ``account`` names the Azure storage account for ``az://`` URIs.

    ``allow_folder`` accepts a key that is empty or ends in '/' (``push`` adds the archive name)."""
    parts = urlsplit(uri.strip())
    scheme = parts.scheme.lower()
    if parts.query or parts.fragment:
        raise BundleError(
            f"{uri!r} has a query or fragment; credentials never go in the URI (a SAS token goes in "
            "AZURE_STORAGE_SAS_TOKEN): use " + FORMS
        )
    if scheme in _SCHEMES:
        provider = _SCHEMES[scheme]
        bucket, key = parts.netloc, parts.path.lstrip("/")
    elif scheme == "https" and (match := _AZURE_HOST.match(parts.hostname or "")):
        provider = "azure"
        account = account or match["account"]
        if account != match["account"]:
            raise BundleError(
                f"{uri!r} names storage account {match['account']!r}, but {account!r} was given"
            )
        bucket, _, key = parts.path.lstrip("/").partition("/")
    elif scheme == "https" and parts.hostname == _GCS_HOST:
        provider = "gcs"
        bucket, _, key = parts.path.lstrip("/").partition("/")
    else:
        raise BundleError(f"unsupported bucket URI {uri!r}: use {FORMS}")
    key = unquote(key)
    if not _BUCKET.match(bucket):
        raise BundleError(
            f"{uri!r}: {bucket!r} is not a valid bucket or container name (3-63 lower-case letters, "
            "digits, '-', '.', '_')"
        )
    if not allow_folder and (key == "" or key.endswith("/")):
        raise BundleError(f"{uri!r} names a folder, not a bundle archive: add the object's key")
    if provider == "azure":
        if not account:
            raise BundleError(
                f"{uri!r} needs the storage account: pass --account (chart: bucket.azureAccount) or "
                "write https://<account>.blob.core.windows.net/<container>/<key>"
            )
        if not _ACCOUNT.match(account):
            raise BundleError(
                f"{account!r} is not a storage account name (3-24 lower-case letters and digits)"
            )
    return BucketLocation(provider, bucket, key, account if provider == "azure" else None)
