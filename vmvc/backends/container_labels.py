"""What makes a container engine's resource vmvc's: labels naming the run and the controller
that made it (Docker and Podman read and write the same labels)."""

from __future__ import annotations

import os
from collections.abc import Callable

from vmvc.backends.base import Leftover
from vmvc.liveness import controller_id
from vmvc.paths import SAFE_NAME

LABEL = "vmvc"
LABEL_RUN = "vmvc.run-id"
LABEL_IMAGE = "vmvc.image-id"
LABEL_CONTROLLER = "vmvc.controller"  # which machine's vmvc made it (see liveness.controller_id)
LABEL_PID = "vmvc.pid"


def owner_labels(run_id: str) -> dict[str, str]:
    """What makes a container or volume vmvc's: an image's `vmvc` label is inherited by any
    container made from it, so identity is the run id plus the controller that made it."""
    return {
        LABEL: "1",
        LABEL_RUN: run_id,
        LABEL_CONTROLLER: controller_id(),
        LABEL_PID: str(os.getpid()),
    }


def owned_leftover(
    kind: str, name: str, labels: dict[str, str], live: set[str], remove: Callable[[], None]
) -> Leftover | None:
    """A Leftover for a labelled resource, or None when the labels do not make it vmvc's."""
    run_id = labels.get(LABEL_RUN, "")
    if not SAFE_NAME.match(run_id) or LABEL_CONTROLLER not in labels:
        return None
    controller = labels[LABEL_CONTROLLER]
    owner = "" if controller == controller_id() else f"controller {controller[:16]}"
    return Leftover(kind, name, run_id, run_id in live, remove=remove, owner=owner)
