"""The docker backend's public face: the class its entry point names.

Everything docker-specific (local and remote engine, lifecycle operations and helpers)
lives in `vmvc.backends.docker_engine`; this module only keeps the path the design card
fixes and joins the engine with its lifecycle operations.
"""

from vmvc.backends.docker_engine.backend import DockerBackend as DockerEngine
from vmvc.backends.docker_engine.operations import DockerOperations


class DockerBackend(DockerOperations, DockerEngine):
    """Containers from the shared image, with the lifecycle operations of a local engine."""


__all__ = ["DockerBackend"]
