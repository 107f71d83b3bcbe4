"""Podman's image store and container layers as vmvc reads them, on output recorded from
podman 4.3.1 on this host (tests/unit/data/podman): an import of the rootfs, its image as
inspected and listed, `podman save` of it by id loaded back, and two running containers
(one on `--rootfs DIR:O`, one from that image) with their OCI configs and the host's mount
table while both ran."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vmvc.backends.disk_usage import tree_allocated_bytes
from vmvc.backends.podman_engine import storage
from vmvc.backends.podman_engine.cli import Engine, PodmanError
from vmvc.backends.podman_engine.images import (
    parse_image_id,
    parse_image_inspect,
    parse_images,
    parse_loaded,
)
from vmvc.backends.podman_engine.storage import (
    container_stored_bytes,
    filesystem_of,
    own_dirs,
    own_layer,
    parse_mountinfo,
    root_path,
)

DATA = Path(__file__).parent / "data" / "podman"
IMPORTED = "4fd1a2bff91c1e3532bdfbb22ae4f0fb67a1921d8d95067affc728acec386252"
RUN_ID = "20260101T000000Z-rec001"


def recorded(name: str) -> str:
    return (DATA / name).read_text()


def inspected(name: str) -> dict:
    return json.loads(recorded(name))[0]


# -- images ----------------------------------------------------------------------------------


def test_the_import_prints_the_new_images_id() -> None:
    assert parse_image_id(recorded("import-quiet.txt"), "podman import") == IMPORTED
    assert parse_image_id(f"progress\n{IMPORTED}\n", "podman import") == IMPORTED


@pytest.mark.parametrize("text", ["", "Writing manifest to image destination\n", "sha256:abc"])
def test_no_image_id_is_a_one_line_error(text: str) -> None:
    with pytest.raises(PodmanError, match="podman import printed no image id") as caught:
        parse_image_id(text, "podman import")
    assert "\n" not in str(caught.value)


def test_the_imported_image_as_inspected() -> None:
    image = parse_image_inspect(recorded("image-inspect.json"))
    assert image.image_id == IMPORTED
    assert image.names == ("localhost/exp-rec:provision",)
    assert image.size == 192_482_500  # the rootfs, about 190 MB: prepare_s's image_bytes
    assert image.labels["vmvc.run-id"] == RUN_ID and image.labels["vmvc.engine"] == "podman"
    with pytest.raises(PodmanError):
        parse_image_inspect("[]")


def test_images_list_names_and_the_labels_that_make_an_image_vmvcs() -> None:
    [image] = parse_images(recorded("images-run-labelled.json"))
    assert image.image_id == IMPORTED and image.name == "localhost/exp-rec:provision"
    assert image.labels["vmvc.run-id"] == RUN_ID
    assert image.labels["vmvc.controller"] == "0123456789abcdef"
    # Loaded from an archive saved by id, the image has no name: listed by its short id.
    [loaded] = parse_images(recorded("images-loaded-untagged.json"))
    assert loaded.names == () and loaded.name == IMPORTED[:12]
    assert loaded.labels["vmvc.run-id"] == RUN_ID  # the labels travel in the image config
    assert parse_images("") == [] and parse_images("null") == []
    with pytest.raises(PodmanError):
        parse_images("not json")


def test_a_saved_image_loads_back_under_the_same_id() -> None:
    """What PodmanPorter.check relies on: podman keeps the config, so the id (its digest)."""
    loaded = parse_loaded(recorded("load-quiet.txt"))
    assert loaded == f"sha256:{IMPORTED}"
    assert parse_image_id(loaded, "podman load") == IMPORTED
    assert parse_loaded("Loaded image(s): localhost/a:b, localhost/c:d\n") == "localhost/a:b"
    with pytest.raises(PodmanError, match="podman load reported no image"):
        parse_loaded("Getting image source signatures\n")


# -- a container's own layer -----------------------------------------------------------------


def test_the_mount_table_gives_each_containers_root_overlay() -> None:
    mounts = parse_mountinfo(recorded("mountinfo-two-containers.txt"))
    overlays = [m for m in mounts if m.fstype == "overlay"]
    assert len(overlays) == 2
    rootfs = root_path(recorded("oci-config-rootfs-overlay.json"))
    layer, upper = own_layer(mounts, rootfs)
    assert rootfs.endswith("/rootfs/merge") and rootfs.startswith("/run/containers/storage/")
    assert upper == layer / "upper" and layer.name == "rootfs"
    image = root_path(recorded("oci-config-from-image.json"))
    layer, upper = own_layer(mounts, image)
    assert upper == layer / "diff" and layer.parent.name == "overlay"


def test_a_rootfs_overlay_container_owns_its_overlay_and_an_unused_storage_layer() -> None:
    mounts = parse_mountinfo(recorded("mountinfo-two-containers.txt"))
    entry = inspected("inspect-rootfs-overlay.json")
    dirs = own_dirs(entry, mounts, root_path(recorded("oci-config-rootfs-overlay.json")))
    # inspect names a storage layer that is NOT the root: counting it alone would miss the
    # overlay the container writes into
    assert set(dirs) == {"root_overlay", "storage_layer"}
    assert dirs["root_overlay"] == Path(
        f"/run/containers/storage/overlay-containers/{entry['Id']}/rootfs"
    )
    assert dirs["storage_layer"] == Path(entry["GraphDriver"]["Data"]["UpperDir"]).parent


def test_an_image_container_owns_one_layer_named_by_both_inspect_and_the_mount() -> None:
    mounts = parse_mountinfo(recorded("mountinfo-two-containers.txt"))
    entry = inspected("inspect-from-image.json")
    dirs = own_dirs(entry, mounts, root_path(recorded("oci-config-from-image.json")))
    assert dirs == {"root_overlay": Path(entry["GraphDriver"]["Data"]["UpperDir"]).parent}


def test_a_root_that_is_not_mounted_is_an_error() -> None:
    mounts = parse_mountinfo(recorded("mountinfo-two-containers.txt"))
    with pytest.raises(PodmanError, match="is not mounted"):
        own_layer(mounts, "/run/containers/storage/overlay-containers/gone/rootfs/merge")
    with pytest.raises(PodmanError, match="is a tmpfs mount"):
        own_layer(mounts, "/dev/shm")
    with pytest.raises(PodmanError, match="names no root"):
        root_path("{}")


def test_the_file_system_a_path_is_on() -> None:
    mounts = parse_mountinfo(recorded("mountinfo-two-containers.txt"))
    assert filesystem_of(mounts, Path("/run/containers/storage/x/rootfs/upper")) == "ext4"
    assert filesystem_of(mounts, Path("/dev/shm/x")) == "tmpfs"
    assert filesystem_of(mounts, Path("/sys/fs/cgroup/memory/x")) == "cgroup"
    assert filesystem_of([], Path("/x")) == "unknown"


def test_mount_points_with_spaces_are_unescaped() -> None:
    line = r"50 27 0:44 / /run/a\040b/merge rw - overlay overlay rw,upperdir=/u\040p,workdir=/w"
    [mount] = parse_mountinfo(line + "\ngarbage line\n")
    assert mount.mount_point == "/run/a b/merge" and mount.options["upperdir"] == "/u p"


def test_stored_bytes_count_both_layer_dirs_and_say_what_and_where(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The whole path on a fake container: inspect (a stand-in podman), its OCI config, the
    mount table; the counted bytes are the allocated blocks of the two directories."""
    overlay, layer, userdata = tmp_path / "rootfs", tmp_path / "layer", tmp_path / "userdata"
    for directory in (overlay / "upper" / "etc", overlay / "work", layer / "diff", userdata):
        directory.mkdir(parents=True)
    (overlay / "upper" / "etc" / "hosts").write_bytes(b"x" * 5000)
    config = userdata / "config.json"
    config.write_text(json.dumps({"root": {"path": str(overlay / "merge")}}))
    mountinfo = tmp_path / "mountinfo"
    mountinfo.write_text(
        "27 1 254:0 / / rw - ext4 /dev/vda rw\n"
        f"51 27 0:43 / {overlay}/merge rw - overlay overlay "
        f"rw,lowerdir=/cache/rootfs,upperdir={overlay}/upper,workdir={overlay}/work\n"
    )
    monkeypatch.setattr(storage, "MOUNTINFO", mountinfo)
    entry = {
        "OCIConfigPath": str(config),
        "StaticDir": str(userdata),
        "GraphDriver": {"Data": {"UpperDir": str(layer / "diff")}},
    }
    reply = tmp_path / "inspect.json"
    reply.write_text(json.dumps([entry]))
    monkeypatch.setattr(Engine, "argv", lambda self, *args: ["cat", str(reply)])
    stored = container_stored_bytes(Engine(), "vmvc-x")
    assert stored.value == tree_allocated_bytes(overlay) + tree_allocated_bytes(layer)
    assert stored.value >= 8192  # the 5000-byte file takes whole blocks
    assert stored.metadata["root_overlay_dir"] == str(overlay)
    assert stored.metadata["storage_layer_dir"] == str(layer)
    assert stored.metadata["upper_bytes"] == tree_allocated_bytes(overlay / "upper")
    assert stored.metadata["filesystem"] == "ext4"
    assert stored.metadata["what"].startswith("the container's layer dirs")
