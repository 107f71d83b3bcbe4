"""The lxc backend's public face: the class its entry point names.

The implementation lives in `vmvc.backends.lxc_engine`.
"""

from vmvc.backends.lxc_engine.backend import LxcBackend

__all__ = ["LxcBackend"]
