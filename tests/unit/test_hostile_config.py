"""Hostile configs: engine URIs pass an allow-list, host and user names a strict pattern.

libvirt runs programs for some URIs (`qemu+ext`, `command=`, `netcat=`) and ssh reads a
host name starting with '-' as an option; vmvc is root, so a config (or a result being
resumed, whose config is validated the same way) must not be able to choose either.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from vmvc.config import ConfigError, load_config
from vmvc.uris import UriError, check_docker_host, check_libvirt_uri

LOCAL_OK = [
    "qemu:///system",
    "qemu:///session",
    "qemu+unix:///system?socket=/run/libvirt/libvirt-sock",
    "qemu+unix:///system?socket=/var/run/libvirt/libvirt-sock",
]
REMOTE_OK = [
    "qemu+ssh://lab1/system",
    "qemu+ssh://root@lab1/system?no_tty=1",
    "qemu+ssh://root@lab2.example.org:2222/system?keyfile=/root/.ssh/vmvc&no_tty=1",
    "qemu+ssh://root@127.0.0.1:2222/system?mode=direct&proxy=native",
    "qemu+ssh://root@[::1]/system",
]
DOCKER_OK = ["ssh://root@lab1", "ssh://lab1:2222", "unix:///var/run/docker.sock"]

# (uri, words the refusal must contain)
LOCAL_BAD = [
    ("qemu+ext:///system?command=/tmp/x", "transport 'qemu+ext'"),
    ("qemu+tcp://127.0.0.1/system", "transport 'qemu+tcp'"),
    ("qemu+tls://lab1/system", "transport 'qemu+tls'"),
    ("qemu+ssh://lab1/system", "transport 'qemu+ssh'"),
    ("xen:///system", "transport 'xen'"),
    ("qemu:///system?socket=/tmp/sock", "parameter 'socket' is refused"),
    ("qemu+unix:///system?socket=/tmp/fake-libvirt-sock", "socket must be under"),
    ("qemu+unix:///system?socket=/run/libvirt/../../tmp/s", "without '..'"),
    ("qemu://lab1/system", "takes no host"),
    ("qemu:///system#frag", "fragment"),
    ("qemu:///embed?root=/tmp", "path must be"),
    ("qemu:///system?command=/tmp/x", "parameter 'command' is refused"),
    ("qemu:///system;touch /tmp/x", "characters"),
]
REMOTE_BAD = [
    ("qemu+ssh://lab1/system?command=/tmp/x", "parameter 'command' is refused"),
    ("qemu+ssh://lab1/system?netcat=/tmp/x", "parameter 'netcat' is refused"),
    ("qemu+ssh://lab1/system?no_verify=1", "parameter 'no_verify' is refused"),
    ("qemu+ssh://lab1/system?known_hosts=/dev/null", "parameter 'known_hosts' is refused"),
    ("qemu+ssh://lab1/system?name=qemu+ext:///x", "parameter 'name' is refused"),
    ("qemu+ssh://lab1/system?pkipath=/tmp", "parameter 'pkipath' is refused"),
    ("qemu+ssh://lab1/system?keyfile=relative/key", "keyfile"),
    ("qemu+ssh://lab1/system?keyfile=/root/../etc/shadow", "without '..'"),
    ("qemu+ssh://lab1/system?socket=/tmp/s", "socket must be under"),
    ("qemu+ssh://lab1/system?no_tty=1&no_tty=0", "given twice"),
    ("qemu+ssh://lab1/system?mode=evil", "mode='evil'"),
    ("qemu+ssh://-oProxyCommand=touch/system", "no leading '-'"),
    ("qemu+ssh://-l@lab1/system", "user name '-l'"),
    ("qemu+ssh://root:secret@lab1/system", "password"),
    ("qemu+ssh://%2doProxyCommand/system", "percent-escapes"),
    ("qemu+ssh://lab1:99999/system", "not a valid URI"),
    ("qemu+ssh://lab1$(id)/system", "characters"),
    ("qemu+ssh:///system", "names no host"),
    ("qemu+libssh2://lab1/system", "transport 'qemu+libssh2'"),
    ("qemu:///system", "transport 'qemu'"),
]
DOCKER_BAD = [
    ("tcp://lab1:2375", "plaintext"),
    ("http://lab1:2375", "scheme 'http'"),
    ("ssh://-oProxyCommand=touch", "no leading '-'"),
    ("ssh://lab1/some/path", "ssh://[user@]host[:port] only"),
    ("ssh://lab1?x=1", "ssh://[user@]host[:port] only"),
    ("unix://relative.sock", "unix:///absolute/path only"),
    ("fd://", "scheme 'fd'"),
    ("lab1", "scheme '(none)'"),
]


@pytest.mark.parametrize("uri", LOCAL_OK)
def test_local_libvirt_uri_allowed(uri: str) -> None:
    assert check_libvirt_uri(uri, remote=False) == uri


@pytest.mark.parametrize("uri", REMOTE_OK)
def test_remote_libvirt_uri_allowed(uri: str) -> None:
    assert check_libvirt_uri(uri, remote=True) == uri


@pytest.mark.parametrize("uri", DOCKER_OK)
def test_docker_host_allowed(uri: str) -> None:
    assert check_docker_host(uri) == uri


@pytest.mark.parametrize(("uri", "says"), LOCAL_BAD)
def test_local_libvirt_uri_refused(uri: str, says: str) -> None:
    with pytest.raises(UriError) as caught:
        check_libvirt_uri(uri, remote=False)
    assert says in str(caught.value)


@pytest.mark.parametrize(("uri", "says"), REMOTE_BAD)
def test_remote_libvirt_uri_refused(uri: str, says: str) -> None:
    with pytest.raises(UriError) as caught:
        check_libvirt_uri(uri, remote=True)
    assert says in str(caught.value)


@pytest.mark.parametrize(("uri", "says"), DOCKER_BAD)
def test_docker_host_refused(uri: str, says: str) -> None:
    with pytest.raises(UriError) as caught:
        check_docker_host(uri)
    assert says in str(caught.value)


def test_plaintext_tcp_needs_the_flag_that_says_insecure() -> None:
    assert check_docker_host("tcp://lab1:2375", insecure_plaintext_tcp=True)
    with pytest.raises(UriError, match="tcp://host:port only"):
        check_docker_host("tcp://lab1:2375/x", insecure_plaintext_tcp=True)


def _config(tmp_path: Path, text: str) -> str:
    path = tmp_path / "c.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_config(None, path)
    message = str(caught.value)
    assert "\n" not in message and message.startswith(str(path))
    return message


@pytest.mark.parametrize(
    ("text", "key", "says"),
    [
        ('libvirt_uri = "qemu+ext:///system?command=/tmp/x"\n', "libvirt_uri", "qemu+ext"),
        (
            '[[hosts]]\nname = "lab1"\nlibvirt_uri = "qemu+ssh://lab1/system?command=/x"\n',
            "hosts.0.libvirt_uri",
            "'command' is refused",
        ),
        (
            '[[hosts]]\nname = "lab1"\ndocker_host = "tcp://lab1:2375"\n',
            "hosts.0",
            "insecure_plaintext_tcp = true",
        ),
        ('[[hosts]]\nname = "-oProxy"\ndocker_host = "ssh://lab1"\n', "hosts.0.name", "pattern"),
        ('[[hosts]]\nname = "a;b"\ndocker_host = "ssh://lab1"\n', "hosts.0.name", "pattern"),
        ('backends = ["../x"]\n', "backends.0", "pattern"),
    ],
    ids=["local-ext", "host-command", "docker-tcp", "host-name-option", "host-name-shell", "be"],
)
def test_hostile_config_is_one_line_naming_the_key(
    tmp_path: Path, text: str, key: str, says: str
) -> None:
    message = _config(tmp_path, text)
    assert f"key '{key}'" in message and says in message, message


def test_insecure_tcp_is_accepted_only_when_asked_for(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text(
        '[[hosts]]\nname = "lab1"\ndocker_host = "tcp://lab1:2375"\ninsecure_plaintext_tcp = true\n'
    )
    assert load_config(None, path).hosts[0].insecure_plaintext_tcp


def test_shipped_configs_still_load() -> None:
    repo = Path(__file__).resolve().parents[2]
    for path in sorted((repo / "configs").glob("*.toml")):
        load_config(None, path)
