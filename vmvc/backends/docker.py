"""The docker backend's public face: the class its entry point names.

Everything docker-specific (local and remote engine, lifecycle helpers) lives in
`vmvc.backends.docker_engine`; this module only keeps the path the design card fixes.
"""

from vmvc.backends.docker_engine.backend import DockerBackend

__all__ = ["DockerBackend"]
