"""The native backend's public face: the class its entry point names.

The implementation lives in `vmvc.backends.native_engine`.
"""

from vmvc.backends.native_engine.backend import NativeBackend

__all__ = ["NativeBackend"]
