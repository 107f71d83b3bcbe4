"""The gVisor backend's public face: the class its entry point names.

The implementation lives in `vmvc.backends.gvisor_engine`.
"""

from vmvc.backends.gvisor_engine.backend import GvisorBackend

__all__ = ["GvisorBackend"]
