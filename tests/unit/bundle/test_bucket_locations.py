"""Bucket URIs and the identity each environment resolves to: pure functions, no store contacted."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from model_server.bundle import bucket_uri
from model_server.bundle.buckets import StoreOptions, _azure_config, _credentials, _gcs_config, _s3_config
from model_server.errors import BundleError
from model_server.settings import Settings, SettingsError


@pytest.mark.parametrize(
    ("uri", "account", "expected"),
    [
        ("s3://models/churn/1.0.0.tar.gz", None, ("s3", "models", "churn/1.0.0.tar.gz", None)),
        ("gs://ml-models/a/b.tar.gz", None, ("gcs", "ml-models", "a/b.tar.gz", None)),
        ("https://storage.googleapis.com/ml_models/b.tar.gz", None, ("gcs", "ml_models", "b.tar.gz", None)),
        ("az://models/b.tar.gz", "acct01", ("azure", "models", "b.tar.gz", "acct01")),
        ("azure://models/b.tar.gz", "acct01", ("azure", "models", "b.tar.gz", "acct01")),
        (
            "https://acct01.blob.core.windows.net/models/x/b%20c.tar.gz",
            None,
            ("azure", "models", "x/b c.tar.gz", "acct01"),
        ),
    ],
)
def test_the_forms_users_write(
    uri: str, account: str | None, expected: tuple[str, str, str, str | None]
) -> None:
    loc = bucket_uri.parse(uri, account)
    assert (loc.provider, loc.bucket, loc.key, loc.account) == expected


@pytest.mark.parametrize(
    ("uri", "account", "message"),
    [
        ("ftp://host/x.tar.gz", None, "unsupported bucket URI"),
        ("https://example.com/x.tar.gz", None, "unsupported bucket URI"),
        ("s3://models/", None, "names a folder"),
        ("s3://Models/x.tar.gz", None, "not a valid bucket"),
        ("az://models/x.tar.gz", None, "needs the storage account"),
        ("az://models/x.tar.gz", "Not_An_Account", "not a storage account name"),
        (
            "https://acct01.blob.core.windows.net/models/x?sv=2024&sig=abc",
            None,
            "credentials never go in the URI",
        ),
        ("https://acct01.blob.core.windows.net/models/x", "other01", "names storage account 'acct01'"),
    ],
)
def test_bad_uris_are_refused_with_the_reason(uri: str, account: str | None, message: str) -> None:
    with pytest.raises(BundleError, match=message):
        bucket_uri.parse(uri, account)


def test_a_folder_uri_takes_the_archive_name_for_push() -> None:
    folder = bucket_uri.parse("s3://models/churn/", allow_folder=True)
    assert folder.in_folder("churn-1.0.0.tar.gz").uri == "s3://models/churn/churn-1.0.0.tar.gz"
    exact = bucket_uri.parse("s3://models/churn/x.tar.gz", allow_folder=True)
    assert exact.in_folder("churn-1.0.0.tar.gz") is exact


def _creds(provider: str, env: dict[str, str], folder: Path | None = None) -> dict[str, object]:
    return _credentials(provider, env, folder)  # type: ignore[return-value]


def test_s3_identity_order_key_then_irsa_then_pod_identity_then_node() -> None:
    opts = StoreOptions()
    key = {"AWS_ACCESS_KEY_ID": "AKIAEXAMPLE", "AWS_SECRET_ACCESS_KEY": "s3cret"}
    irsa = {
        "AWS_WEB_IDENTITY_TOKEN_FILE": "/var/run/secrets/eks/token",
        "AWS_ROLE_ARN": "arn:aws:iam::1:role/r",
    }
    pod = {"AWS_CONTAINER_CREDENTIALS_FULL_URI": "http://169.254.170.23/v1/credentials"}
    config, who = _s3_config(_credentials("s3", {**key, **irsa}, None), {**key, **irsa}, opts)
    assert who == "access key AKIAEXAMPLE (env AWS_ACCESS_KEY_ID)" and config["secret_access_key"] == "s3cret"
    assert "s3cret" not in who
    assert _s3_config({}, irsa, opts)[1] == (
        "role arn:aws:iam::1:role/r by web identity (EKS IRSA, AWS_WEB_IDENTITY_TOKEN_FILE)"
    )
    assert "EKS Pod Identity" in _s3_config({}, pod, opts)[1]
    assert "EC2 instance profile" in _s3_config({}, {}, opts)[1]
    assert "anonymous" in _s3_config(_credentials("s3", key, None), key, StoreOptions(anonymous=True))[1]


def test_s3_addressing_follows_the_endpoint_unless_told() -> None:
    assert _s3_config({}, {}, StoreOptions())[0]["virtual_hosted_style_request"] is True
    on_prem = _s3_config({}, {}, StoreOptions(endpoint="http://seaweedfs:8333", region="eu-1"))[0]
    assert on_prem["virtual_hosted_style_request"] is False and on_prem["region"] == "eu-1"
    forced = _s3_config({}, {}, StoreOptions(endpoint="https://b.s3.example", path_style=False))[0]
    assert forced["virtual_hosted_style_request"] is True


def test_a_half_key_pair_is_refused() -> None:
    env = {"AWS_ACCESS_KEY_ID": "AKIAEXAMPLE"}
    with pytest.raises(BundleError, match="AWS_SECRET_ACCESS_KEY is missing"):
        _s3_config(_credentials("s3", env, None), env, StoreOptions())


def test_files_from_a_mounted_secret_win_over_env_and_only_known_names_are_read(tmp_path: Path) -> None:
    (tmp_path / "AWS_ACCESS_KEY_ID").write_text("AKIAFILE\n")
    (tmp_path / "AWS_SECRET_ACCESS_KEY").write_text("from-file\n")
    (tmp_path / "AWS_ENDPOINT_URL").write_text("http://elsewhere\n")
    env = {"AWS_ACCESS_KEY_ID": "AKIAENV", "AWS_SECRET_ACCESS_KEY": "from-env"}
    creds = _credentials("s3", env, tmp_path)
    config, who = _s3_config(creds, env, StoreOptions())
    assert config["access_key_id"] == "AKIAFILE" and config["secret_access_key"] == "from-file"
    assert who == f"access key AKIAFILE (file {tmp_path}/AWS_ACCESS_KEY_ID)"
    assert "endpoint" not in config
    with pytest.raises(BundleError, match="is not a directory"):
        _credentials("s3", {}, tmp_path / "absent")


def test_gcs_service_account_key_workload_identity_and_wrong_key_types(tmp_path: Path) -> None:
    key = {
        "type": "service_account",
        "client_email": "loader@proj.iam.gserviceaccount.com",
        "private_key": "x",
    }
    path = tmp_path / "key.json"
    path.write_text(json.dumps(key))
    env = {"GOOGLE_APPLICATION_CREDENTIALS": str(path)}
    config, who = _gcs_config(_credentials("gcs", env, None), StoreOptions(endpoint="http://gcs:4443/"))
    assert who.startswith(
        "service account loader@proj.iam.gserviceaccount.com (env GOOGLE_APPLICATION_CREDENTIALS"
    )
    assert config["base_url"] == "http://gcs:4443" and json.loads(config["service_account_key"]) == key
    assert "GKE Workload Identity" in _gcs_config({}, StoreOptions())[1]
    user = {"GOOGLE_SERVICE_ACCOUNT_KEY": json.dumps({"type": "authorized_user"})}
    with pytest.raises(BundleError, match="only a service account key works here"):
        _gcs_config(_credentials("gcs", user, None), StoreOptions())
    with pytest.raises(BundleError, match="is not JSON"):
        _gcs_config(_credentials("gcs", {"GOOGLE_SERVICE_ACCOUNT_KEY": "{nope"}, None), StoreOptions())


def test_azure_key_sas_service_principal_workload_identity_managed_identity() -> None:
    opts = StoreOptions()

    def who(env: dict[str, str]) -> str:
        return _azure_config(_credentials("azure", env, None), env, "acct01", opts)[1]

    assert who({"AZURE_STORAGE_ACCOUNT_KEY": "a2V5"}) == (
        "the account key of storage account acct01 (env AZURE_STORAGE_ACCOUNT_KEY)"
    )
    assert who({"AZURE_STORAGE_SAS_TOKEN": "?sv=1&sig=2"}) == "a SAS token (env AZURE_STORAGE_SAS_TOKEN)"
    sp = {"AZURE_CLIENT_ID": "cid", "AZURE_CLIENT_SECRET": "s", "AZURE_TENANT_ID": "t"}
    assert who(sp).startswith("service principal cid with a client secret")
    wi = {
        "AZURE_CLIENT_ID": "cid",
        "AZURE_TENANT_ID": "t",
        "AZURE_FEDERATED_TOKEN_FILE": "/var/run/azure/token",
    }
    assert who(wi) == "Azure Workload Identity, client cid (AZURE_FEDERATED_TOKEN_FILE)"
    assert "managed identity" in who({})
    with pytest.raises(BundleError, match="needs AZURE_CLIENT_ID and AZURE_TENANT_ID"):
        who({"AZURE_CLIENT_SECRET": "s"})


def test_fetch_settings_are_read_and_bounded() -> None:
    s = Settings.from_env(
        {
            "MAX_ARCHIVE_BYTES": "1000",
            "FETCH_DEADLINE_SECONDS": "60",
            "FETCH_STALL_SECONDS": "5",
            "STORAGE_CREDENTIALS_DIR": "/var/run/secrets/model-server/storage",
        }
    )
    assert (s.max_archive_bytes, s.fetch_deadline_seconds, s.fetch_stall_seconds) == (1000, 60.0, 5.0)
    assert s.storage_credentials_dir == Path("/var/run/secrets/model-server/storage")
    defaults = Settings.from_env({})
    assert (defaults.max_archive_bytes, defaults.fetch_deadline_seconds) == (2 * 1024**3, 900.0)
    with pytest.raises(SettingsError, match="MAX_ARCHIVE_BYTES must be at most"):
        Settings.from_env({"MAX_ARCHIVE_BYTES": str(3 * 1024**3)})
    with pytest.raises(SettingsError, match="FETCH_STALL_SECONDS must be greater than 0"):
        Settings.from_env({"FETCH_STALL_SECONDS": "0"})
