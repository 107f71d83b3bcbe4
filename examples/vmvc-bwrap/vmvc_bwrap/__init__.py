"""vmvc-bwrap: an example vmvc backend that lives outside vmvc (see README "Writing a backend")."""

from vmvc_bwrap.backend import BwrapBackend

__all__ = ["BwrapBackend"]
