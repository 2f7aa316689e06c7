"""The bucket-source suite: `model-server push` and `fetch --bucket` against real storage servers.

The three servers (tests/support/emulators.py) start once per session on 127.0.0.1 and stop at its
end; each test writes its own objects under its own keys. Every CLI run gets an environment with no
cloud credentials but the ones the test names, so nothing falls back to a cloud metadata service.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from support import emulators


@pytest.fixture(scope="session")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[emulators.Emulator]:
    emu = emulators.start_seaweedfs(tmp_path_factory.mktemp("seaweedfs"))
    yield emu
    emu.stop()


@pytest.fixture(scope="session")
def azure(tmp_path_factory: pytest.TempPathFactory) -> Iterator[emulators.Emulator]:
    emu = emulators.start_azurite(tmp_path_factory.mktemp("azurite"))
    emulators.azure_set_public(emu, "public")
    yield emu
    emu.stop()


@pytest.fixture(scope="session")
def gcs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[emulators.Emulator]:
    emu = emulators.start_fake_gcs(tmp_path_factory.mktemp("fake-gcs"))
    yield emu
    emu.stop()
