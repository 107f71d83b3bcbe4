"""The lxc backend's public face: the class its entry point names.

The implementation lives in `vmvc.backends.lxc_engine`; this module joins the engine with
its lifecycle operations, as the docker and libvirt backends' modules do.
"""

from vmvc.backends.lxc_engine.backend import LxcBackend as LxcEngine
from vmvc.backends.lxc_engine.operations import LxcOperations


class LxcBackend(LxcOperations, LxcEngine):
    """System containers from the image's system tree, with LXC's lifecycle operations."""


__all__ = ["LxcBackend"]
