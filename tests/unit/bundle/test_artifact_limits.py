"""The zip-bomb cap follows the container's memory limit when MAX_ARTIFACT_UNPACKED_BYTES is unset, so
the chart's default 512Mi pod refuses a bomb it could not load instead of being OOM-killed on every
start. The cgroup files are faked in tmp_path, laid out as the kernel writes them."""

from __future__ import annotations

from pathlib import Path

import pytest
from model_server.bundle import artifact_limits
from model_server.bundle.artifact_limits import container_memory_limit, effective_unpacked_cap
from model_server.bundle.load import load_bundle
from model_server.errors import BundleError
from model_server.settings import Settings
from support.hostile import ARTIFACT, GiB, MiB, add_zero_member, copy_bundle, set_artifact

V1_UNLIMITED = "9223372036854771712"  # what cgroup v1 writes for "no limit" (PAGE_COUNTER_MAX pages)


def cgroup(root: Path, *, v2: str | None = None, v1: str | None = None) -> Path:
    if v2 is not None:
        (root / "memory.max").write_text(v2 + "\n")
    if v1 is not None:
        (root / "memory").mkdir()
        (root / "memory" / "memory.limit_in_bytes").write_text(v1 + "\n")
    return root


def test_cgroup_v2_limit_gives_a_third_of_what_the_libraries_leave(tmp_path: Path) -> None:
    root = cgroup(tmp_path, v2=str(512 * MiB))
    assert container_memory_limit(root) == 512 * MiB
    cap, name = effective_unpacked_cap(None, root)
    assert cap == (512 - 200) * MiB // 3 == 109051904  # 104 MiB: the chart's default pod
    assert name == (
        "the 109051904-byte cap derived from this container's 512 MiB memory limit "
        "(set MAX_ARTIFACT_UNPACKED_BYTES to override)"
    )


def test_cgroup_v2_max_means_no_limit(tmp_path: Path) -> None:
    root = cgroup(tmp_path, v2="max")
    assert container_memory_limit(root) is None
    assert effective_unpacked_cap(None, root) == (4 * GiB, "MAX_ARTIFACT_UNPACKED_BYTES (4294967296)")


def test_cgroup_v1_limit(tmp_path: Path) -> None:
    root = cgroup(tmp_path, v1=str(2 * GiB))
    assert effective_unpacked_cap(None, root)[0] == (2048 - 200) * MiB // 3
    assert "2048 MiB memory limit" in effective_unpacked_cap(None, root)[1]


def test_cgroup_v1_unlimited_keeps_the_4_gib_default(tmp_path: Path) -> None:
    root = cgroup(tmp_path, v1=V1_UNLIMITED)
    assert effective_unpacked_cap(None, root) == (4 * GiB, "MAX_ARTIFACT_UNPACKED_BYTES (4294967296)")


def test_a_limit_past_12_gib_keeps_the_4_gib_ceiling(tmp_path: Path) -> None:
    assert effective_unpacked_cap(None, cgroup(tmp_path, v2=str(64 * GiB)))[0] == 4 * GiB


@pytest.mark.parametrize("content", [None, "", "not a number"])
def test_nothing_readable_keeps_the_4_gib_default(tmp_path: Path, content: str | None) -> None:
    root = cgroup(tmp_path, v2=content)
    assert container_memory_limit(root) is None
    assert effective_unpacked_cap(None, root)[0] == 4 * GiB


def test_explicit_setting_wins_over_the_memory_limit(tmp_path: Path) -> None:
    root = cgroup(tmp_path, v2=str(512 * MiB))
    setting = Settings.from_env({"MAX_ARTIFACT_UNPACKED_BYTES": str(8 * GiB)}).max_artifact_unpacked_bytes
    assert effective_unpacked_cap(setting, root) == (8 * GiB, "MAX_ARTIFACT_UNPACKED_BYTES (8589934592)")
    assert effective_unpacked_cap(1000, root)[0] == 1000  # even below the derived floor


@pytest.mark.parametrize("limit", [256 * MiB, 128 * MiB])
def test_a_tiny_pod_gets_the_64_mib_floor(tmp_path: Path, limit: int) -> None:
    """(256 MiB - 200 MiB) / 3 is 18 MiB and 128 MiB is below the libraries alone: 64 MiB either way."""
    assert effective_unpacked_cap(None, cgroup(tmp_path, v2=str(limit)))[0] == 64 * MiB


def test_unset_is_none_and_not_a_number(tmp_path: Path) -> None:
    """The chart leaves the variable out (`null`), an empty value counts as unset: the server derives."""
    assert Settings.from_env({}).max_artifact_unpacked_bytes is None
    assert Settings.from_env({"MAX_ARTIFACT_UNPACKED_BYTES": " "}).max_artifact_unpacked_bytes is None


@pytest.fixture(scope="module")
def bomb(tmp_path_factory: pytest.TempPathFactory, iris_bundle: Path) -> Path:
    """The iris bundle plus 160 MiB of zeros deflated to 0.16 MiB (valid sizes and CRC): past the 104 MiB
    a 512Mi pod can load, far below the 4 GiB default that let it through before."""
    bundle = copy_bundle(iris_bundle, tmp_path_factory.mktemp("cap") / "bomb")
    set_artifact(bundle, add_zero_member((bundle / ARTIFACT).read_bytes(), "padding.bin", 160 * MiB))
    return bundle


def test_load_bundle_refuses_a_bomb_under_the_derived_cap(
    bomb: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(artifact_limits, "CGROUP_ROOT", cgroup(tmp_path, v2=str(512 * MiB)))
    with pytest.raises(BundleError) as err:
        load_bundle(bomb, Settings.from_env({}))
    message = str(err.value)
    assert "would unpack to" in message and "'padding.bin' declares 167772160 bytes" in message, message
    assert "more than the 109051904-byte cap derived from this container's 512 MiB memory limit" in message
    assert "set MAX_ARTIFACT_UNPACKED_BYTES to override" in message


def test_the_operator_can_let_the_same_artifact_past_the_derived_cap(
    bomb: Path, iris_bundle: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An explicit setting lifts the derived cap (the padding is not part of the model, so it loads), and
    an honest bundle loads under the derived cap of the default pod."""
    monkeypatch.setattr(artifact_limits, "CGROUP_ROOT", cgroup(tmp_path, v2=str(512 * MiB)))
    assert load_bundle(bomb, Settings.from_env({"MAX_ARTIFACT_UNPACKED_BYTES": str(GiB)})) is not None
    assert load_bundle(iris_bundle, Settings.from_env({})) is not None
