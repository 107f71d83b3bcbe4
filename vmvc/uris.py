"""Which engine URIs vmvc will connect to: allow-lists, not deny-lists.

vmvc runs as root and hands these strings to libvirt and the Docker SDK, which may run
programs for them (libvirt's `ext` transport and `command=`/`netcat=` parameters, ssh
options smuggled in a host name that starts with '-'). A config file or a result being
resumed could carry such a URI, so every URI is parsed and only known-safe shapes pass:

libvirt, this machine (`libvirt_uri`):
    qemu:///system                      the system daemon over its default UNIX socket
    qemu+unix:///system?socket=PATH     the same daemon at an explicit socket; PATH must be
                                        under /run/libvirt or /var/run/libvirt, so root never
                                        talks to a socket somebody planted in /tmp
libvirt, another host (`[[hosts]] libvirt_uri`):
    qemu+ssh://[user@]host[:port]/system?no_tty=1&keyfile=/abs/key&mode=...&proxy=...
        refused: command= and netcat= (run a program), no_verify= (accepts any host key:
        a machine in the middle could impersonate the host), known_hosts=,
        known_hosts_verify= and sshauth= (libssh transports only), name= (makes the far
        end open a different URI), pkipath= (TLS only) and any parameter not listed.
        qemu+ext, qemu+tcp (plaintext), qemu+tls, qemu+libssh(2) are refused: vmvc needs
        none of them, and each brings options of its own to review first.
Docker (`[[hosts]] docker_host`):
    ssh://[user@]host[:port]            the documented way; no path, query or fragment
    unix:///abs/path.sock               a local socket
    tcp://host:port                     plaintext and unauthenticated: only with
                                        `insecure_plaintext_tcp = true` on that host

Host and user names follow a strict pattern: no shell metacharacters, no leading '-'
(ssh would read `-oProxyCommand=...` as an option), no '%' or '@' tricks.
"""

from __future__ import annotations

import re
from urllib.parse import SplitResult, parse_qsl, urlsplit

HOST_NAME = re.compile(
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*"
)
IPV6 = re.compile(r"\[[0-9A-Fa-f:.]{2,45}\]")
USER_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,31}")
# An absolute path of plain characters; '..' components are refused separately.
PLAIN_PATH = re.compile(r"/[A-Za-z0-9_.+@/-]{1,4095}")

# Shell and quoting characters: none of them belongs in an engine URI.
UNSAFE_CHARS = frozenset("\\'\"`$;|<>(){}*!")

LIBVIRT_LOCAL_SCHEMES = ("qemu", "qemu+unix")
LIBVIRT_REMOTE_SCHEMES = ("qemu+ssh",)
LIBVIRT_PATHS = ("/system", "/session")
LIBVIRT_SOCKET_DIRS = ("/run/libvirt/", "/var/run/libvirt/")
# Parameter -> allowed values (None: checked by _param_value).
LIBVIRT_SSH_PARAMS: dict[str, tuple[str, ...] | None] = {
    "no_tty": ("0", "1"),
    "keyfile": None,
    "socket": None,
    "mode": ("auto", "legacy", "direct"),
    "proxy": ("auto", "netcat", "native"),
}
LIBVIRT_UNIX_PARAMS: dict[str, tuple[str, ...] | None] = {"socket": None}
REFUSED_WHY = {
    "command": "runs a program of the URI's choosing",
    "netcat": "runs a program of the URI's choosing",
    "no_verify": "accepts any ssh host key; add the host to known_hosts instead",
    "name": "makes the far end open a different URI",
}


class UriError(ValueError):
    """A URI vmvc will not use; the message says what is wrong and what is allowed."""


def check_host_name(value: str, what: str = "host name") -> str:
    if not (HOST_NAME.fullmatch(value) or IPV6.fullmatch(value)) or len(value) > 253:
        raise UriError(
            f"{what} {value!r} is not a plain host name or address "
            "(letters, digits, '-', '.'; no leading '-')"
        )
    return value


def check_user_name(value: str) -> str:
    if not USER_NAME.fullmatch(value):
        raise UriError(
            f"user name {value!r} is not allowed (letters, digits, '_', '.', '-'; "
            "no leading '-' or '.')"
        )
    return value


def check_plain_path(value: str, what: str) -> str:
    if not PLAIN_PATH.fullmatch(value) or ".." in value.split("/"):
        raise UriError(
            f"{what} {value!r} must be an absolute path of letters, digits and _.+@/- without '..'"
        )
    return value


def _split(uri: str) -> SplitResult:
    if any(
        not ch.isprintable() or not ch.isascii() or ch.isspace() or ch in UNSAFE_CHARS for ch in uri
    ):
        raise UriError(f"{uri!r} contains characters a URI here never needs")
    try:
        parts = urlsplit(uri)
        _ = parts.port  # raises ValueError on a port that is not a number in range
    except ValueError as exc:
        raise UriError(f"{uri!r} is not a valid URI ({exc})") from None
    if parts.fragment:
        raise UriError(f"{uri!r}: a fragment ('#...') is not allowed")
    return parts


def _authority(parts: SplitResult, uri: str, *, required: bool) -> None:
    """user@host:port: each part strict; '%'-escapes and passwords refused."""
    if "%" in parts.netloc:
        raise UriError(f"{uri!r}: percent-escapes in the host part are not allowed")
    if not parts.netloc:
        if required:
            raise UriError(f"{uri!r} names no host")
        return
    if not required:
        raise UriError(f"{uri!r}: this machine's URI takes no host (use '///')")
    if parts.password is not None:
        raise UriError(f"{uri!r}: a password in the URI is not allowed; use ssh keys")
    if parts.username is not None:
        check_user_name(parts.username)
    host = parts.netloc.rpartition("@")[2]
    if parts.port is not None:
        host = host.rsplit(":", 1)[0]
        if not 1 <= parts.port <= 65535:
            raise UriError(f"{uri!r}: port {parts.port} is out of range")
    check_host_name(host)


def _params(parts: SplitResult, uri: str, allowed: dict[str, tuple[str, ...] | None]) -> dict:
    try:
        pairs = parse_qsl(parts.query, keep_blank_values=True, strict_parsing=bool(parts.query))
    except ValueError:
        raise UriError(f"{uri!r}: malformed query string") from None
    params: dict[str, str] = {}
    for key, value in pairs:
        if key in params:
            raise UriError(f"{uri!r}: parameter '{key}' is given twice")
        if key not in allowed:
            why = REFUSED_WHY.get(key, "not on vmvc's allow-list")
            names = ", ".join(allowed) or "none"
            raise UriError(f"{uri!r}: parameter '{key}' is refused ({why}; allowed: {names})")
        choices = allowed[key]
        if choices is not None and value not in choices:
            raise UriError(f"{uri!r}: {key}={value!r} (allowed: {', '.join(choices)})")
        if key == "keyfile":
            check_plain_path(value, "keyfile")
        if key == "socket":
            check_plain_path(value, "socket")
            if not value.startswith(LIBVIRT_SOCKET_DIRS):
                raise UriError(f"{uri!r}: socket must be under {' or '.join(LIBVIRT_SOCKET_DIRS)}")
        params[key] = value
    return params


def check_libvirt_uri(uri: str, *, remote: bool) -> str:
    """The URI itself if vmvc may open it; UriError otherwise.

    `remote=False` is this machine's libvirtd (`qemu:///system`, `qemu+unix:///system`),
    `remote=True` another host's, reached over ssh (`qemu+ssh://host/system`).
    """
    parts = _split(uri)
    schemes = LIBVIRT_REMOTE_SCHEMES if remote else LIBVIRT_LOCAL_SCHEMES
    if parts.scheme not in schemes:
        where = "another host" if remote else "this machine"
        raise UriError(
            f"{uri!r}: libvirt transport '{parts.scheme or '(none)'}' is not allowed for "
            f"{where} (allowed: {', '.join(s + '://' for s in schemes)})"
        )
    _authority(parts, uri, required=remote)
    if parts.path not in LIBVIRT_PATHS:
        raise UriError(f"{uri!r}: path must be one of {', '.join(LIBVIRT_PATHS)}")
    allowed = (
        LIBVIRT_SSH_PARAMS
        if remote
        else (LIBVIRT_UNIX_PARAMS if parts.scheme == "qemu+unix" else {})
    )
    _params(parts, uri, allowed)
    return uri


def check_docker_host(uri: str, *, insecure_plaintext_tcp: bool = False) -> str:
    """The docker_host itself if vmvc may use it; UriError otherwise."""
    parts = _split(uri)
    if parts.scheme == "ssh":
        _authority(parts, uri, required=True)
        if parts.path or parts.query:
            raise UriError(f"{uri!r}: an ssh:// docker_host is ssh://[user@]host[:port] only")
    elif parts.scheme == "unix":
        if parts.netloc or parts.query:
            raise UriError(f"{uri!r}: a unix:// docker_host is unix:///absolute/path only")
        check_plain_path(parts.path, "docker socket")
    elif parts.scheme == "tcp":
        if not insecure_plaintext_tcp:
            raise UriError(
                f"{uri!r}: tcp:// is plaintext and unauthenticated; use ssh://, or set "
                "insecure_plaintext_tcp = true for this host if you accept that"
            )
        _authority(parts, uri, required=True)
        if parts.path not in ("", "/") or parts.query:
            raise UriError(f"{uri!r}: a tcp:// docker_host is tcp://host:port only")
    else:
        raise UriError(
            f"{uri!r}: docker_host scheme '{parts.scheme or '(none)'}' is not allowed "
            "(allowed: ssh://, unix://, and tcp:// with insecure_plaintext_tcp = true)"
        )
    return uri
