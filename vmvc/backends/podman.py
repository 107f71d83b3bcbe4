"""The podman backend's public face: the class its entry point names.

The implementation lives in `vmvc.backends.podman_engine`.
"""

from vmvc.backends.podman_engine.backend import PodmanBackend

__all__ = ["PodmanBackend"]
