"""What a directory tree costs the host's disk: allocated blocks, as `du` counts them.

Shared by the engines whose instances keep their own data in a directory (Docker's layer
dirs, Podman's and LXC's overlay upper layers, a full copy of a tree): sizes in the clone
and provision workloads are allocated blocks, so sparse files and holes count as what they
occupy, not as their apparent length.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path


def tree_allocated_bytes(root: Path) -> int:
    """Blocks allocated to a tree (like `du -sx --block-size=1`), not following mounts."""
    try:
        device = root.stat().st_dev
    except OSError:
        return 0
    total = 0
    for directory, subdirs, files in os.walk(root):
        for name in list(subdirs):
            path = Path(directory) / name
            with contextlib.suppress(OSError):
                if path.lstat().st_dev != device:
                    subdirs.remove(name)  # the overlay's merged mount point
        for name in [*files, *subdirs]:
            with contextlib.suppress(OSError):
                total += (Path(directory) / name).lstat().st_blocks * 512
    with contextlib.suppress(OSError):
        total += root.lstat().st_blocks * 512
    return total
