"""Bearer tokens and a Secret volume laid out the way the kubelet lays it out, for the auth tests."""

from __future__ import annotations

import os
from pathlib import Path

OLD = "old-token-0123456789abcdef"
NEW = "new-token-fedcba9876543210"


def secret_volume(root: Path, version: str, content: str) -> Path:
    """Lay out a Secret volume the way the kubelet does: tokens -> ..data/tokens, ..data -> ..<version>.

    A later call swaps ..data atomically to a new directory, as the kubelet does on a Secret update.
    """
    target = root / f"..{version}"
    target.mkdir()
    (target / "tokens").write_text(content)
    tmp = root / "..data_tmp"
    tmp.symlink_to(target.name)
    os.replace(tmp, root / "..data")
    link = root / "tokens"
    if not link.is_symlink():
        link.symlink_to("..data/tokens")
    return link
