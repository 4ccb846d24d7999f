import io
import tarfile
from pathlib import Path

import pytest

from sagemaker_emu.fleet.model_data import ModelDataError, prepare


def tarball(path, members):
    with tarfile.open(path, "w:gz") as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return path


def file_member(name, data=b"x"):
    info = tarfile.TarInfo(name)
    info.size = len(data)
    return info, data


def link_member(name, target, kind=tarfile.SYMTYPE):
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = target
    return info, None


def test_unpacks_a_normal_archive(tmp_path):
    archive = tarball(tmp_path / "model.tar.gz", [file_member("code/inference.py", b"pass"), file_member("w.bin")])
    prepare(archive.as_uri(), tmp_path / "model")
    assert (tmp_path / "model" / "code" / "inference.py").read_bytes() == b"pass"


@pytest.mark.parametrize("member", [
    file_member("../escape.txt"),
    link_member("link", "/etc/passwd"),
    link_member("link", "../../outside"),
    link_member("hard", "/etc/passwd", tarfile.LNKTYPE),
], ids=["dotdot", "symlink-abs", "symlink-up", "hardlink"])
def test_refuses_to_write_outside_the_model_directory(tmp_path, member):
    archive = tarball(tmp_path / "evil.tar.gz", [member])
    with pytest.raises(ModelDataError):
        prepare(archive.as_uri(), tmp_path / "model")
    assert not (tmp_path / "escape.txt").exists()


def test_absolute_names_land_inside_the_model_directory(tmp_path):
    archive = tarball(tmp_path / "abs.tar.gz", [file_member("/abs/inside.txt")])
    prepare(archive.as_uri(), tmp_path / "model")
    assert (tmp_path / "model" / "abs" / "inside.txt").exists()
    assert not Path("/abs/inside.txt").exists()


def test_directory_is_copied(tmp_path):
    src = tmp_path / "src"
    (src / "code").mkdir(parents=True)
    (src / "code" / "inference.py").write_text("pass")
    (src / "weights.json").symlink_to(src / "code" / "inference.py")  # a link inside: followed
    prepare(src.as_uri(), tmp_path / "model", roots=[tmp_path])
    assert (tmp_path / "model" / "code" / "inference.py").read_text() == "pass"
    assert (tmp_path / "model" / "weights.json").read_text() == "pass"
    assert not (tmp_path / "model" / "weights.json").is_symlink()


def test_directory_outside_the_roots_is_refused(tmp_path):
    (tmp_path / "src").mkdir()
    with pytest.raises(ModelDataError, match="outside the directories sagemaker-emu may read"):
        prepare((tmp_path / "src").as_uri(), tmp_path / "model", roots=[tmp_path / "elsewhere"])


@pytest.mark.parametrize("target", ["/etc", "/etc/hostname", "/dev/zero"])
def test_directory_links_leaving_the_roots_are_refused(tmp_path, target):
    """Issue 11 item 12: a link to /etc copied it; a link to /dev/zero filled the disk."""
    src = tmp_path / "src"
    src.mkdir()
    (src / "innocent").symlink_to(target)
    with pytest.raises(ModelDataError, match="points outside the allowed directories"):
        prepare(src.as_uri(), tmp_path / "model", roots=[tmp_path])
    assert not any((tmp_path / "model").iterdir())


def test_device_files_inside_the_roots_are_refused(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "zero").symlink_to("/dev/zero")
    with pytest.raises(ModelDataError, match="not a regular file"):
        prepare(src.as_uri(), tmp_path / "model", roots=[tmp_path, Path("/dev")])


def test_a_link_loop_is_copied_once(tmp_path):
    src = tmp_path / "src"
    (src / "a").mkdir(parents=True)
    (src / "a" / "up").symlink_to(src)
    prepare(src.as_uri(), tmp_path / "model", roots=[tmp_path])
    assert (tmp_path / "model" / "a").is_dir()


def test_remote_and_missing_sources(tmp_path):
    with pytest.raises(ModelDataError, match="use a file:// URL"):
        prepare("s3://bucket/model.tar.gz", tmp_path / "m")
    with pytest.raises(ModelDataError, match="does not exist"):
        prepare((tmp_path / "nope.tar.gz").as_uri(), tmp_path / "m")
    with pytest.raises(ModelDataError, match="Could not unpack"):
        (tmp_path / "junk.tar.gz").write_bytes(b"not a tarball")
        prepare((tmp_path / "junk.tar.gz").as_uri(), tmp_path / "m")
