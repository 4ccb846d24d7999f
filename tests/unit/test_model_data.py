import io
import tarfile
from pathlib import Path

import pytest

from sagemaker_emu.fleet import model_data
from sagemaker_emu.fleet.model_data import ModelDataError, ModelSource


def prepare(url, model_dir, **options):
    model_data.prepare(ModelSource(url), model_dir, **options)


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
    with pytest.raises(ModelDataError, match="use an s3:// URL, or a file:// URL"):
        prepare("https://example.com/model.tar.gz", tmp_path / "m")
    with pytest.raises(ModelDataError, match="no S3"):
        prepare("s3://bucket/model.tar.gz", tmp_path / "m")
    with pytest.raises(ModelDataError, match="does not exist"):
        prepare((tmp_path / "nope.tar.gz").as_uri(), tmp_path / "m")
    with pytest.raises(ModelDataError, match="Could not unpack"):
        (tmp_path / "junk.tar.gz").write_bytes(b"not a tarball")
        prepare((tmp_path / "junk.tar.gz").as_uri(), tmp_path / "m")


class Objects:
    """An ObjectStore over local files: `s3://b/<key>` is `root/<key>`."""

    def __init__(self, root):
        self.root = root
        self.fetched = []

    def fetch(self, url, prefix=False):
        self.fetched.append((url, prefix))
        path = self.root / url.removeprefix("s3://b/")
        if not path.exists():
            raise LookupError(f"no object at {url}")
        return path


def test_s3_archive_prefix_and_plain_object(tmp_path):
    store = tmp_path / "store"
    (store / "weights" / "sub").mkdir(parents=True)
    (store / "weights" / "sub" / "w.bin").write_bytes(b"w")
    tarball(store / "model.tar.gz", [file_member("code/inference.py", b"print()")])
    objects = Objects(store)
    model_data.prepare(ModelSource("s3://b/model.tar.gz"), tmp_path / "a", objects=objects)
    assert (tmp_path / "a" / "code" / "inference.py").read_bytes() == b"print()"
    model_data.prepare(ModelSource("s3://b/weights/", compressed=False, prefix=True), tmp_path / "b", objects=objects)
    assert (tmp_path / "b" / "sub" / "w.bin").read_bytes() == b"w"
    model_data.prepare(ModelSource("s3://b/model.tar.gz", compressed=False), tmp_path / "c", objects=objects)
    assert (tmp_path / "c" / "model.tar.gz").is_file()
    model_data.prepare(ModelSource("s3://b/model.tar.gz"), tmp_path / "d", objects=objects, unpack=False)
    assert list((tmp_path / "d").iterdir()) == [] and len(objects.fetched) == 4  # fetched, not unpacked
    with pytest.raises(ModelDataError, match="no object at s3://b/missing"):
        model_data.prepare(ModelSource("s3://b/missing"), tmp_path / "e", objects=objects)


def test_only_the_named_files_are_unpacked_from_each_kind_of_source(tmp_path):
    """LMI's image reads its serving.properties, not the weights beside it: no copy of those per instance."""
    only = frozenset({"serving.properties"})
    store = tmp_path / "store"
    (store / "prefix" / "m").mkdir(parents=True)
    for folder in (store / "prefix" / "m", tmp_path / "local"):
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "serving.properties").write_text("option.x=1\n")
        (folder / "model.safetensors").write_bytes(b"w" * 100)
    tarball(store / "model.tar.gz", [file_member("m/serving.properties", b"option.x=1\n"), file_member("m/w.bin")])
    objects = Objects(store)
    sources = [("a", ModelSource("s3://b/model.tar.gz")), ("b", ModelSource("s3://b/prefix/", compressed=False, prefix=True)),
               ("c", ModelSource((store / "model.tar.gz").as_uri())), ("d", ModelSource((tmp_path / "local").as_uri()))]
    for name, source in sources:
        model_data.prepare(source, tmp_path / name, roots=[tmp_path], objects=objects, only=only)
        files = [p.name for p in (tmp_path / name).rglob("*") if p.is_file()]
        assert files == ["serving.properties"], (name, files)


def test_model_source_of_a_container():
    assert ModelSource.of({"Image": "x"}) is None
    assert ModelSource.of({"ModelDataUrl": "s3://b/m.tar.gz"}) == ModelSource("s3://b/m.tar.gz")
    s3 = {"S3Uri": "s3://b/p/", "S3DataType": "S3Prefix", "CompressionType": "None"}
    assert ModelSource.of({"ModelDataSource": {"S3DataSource": s3}}) == ModelSource("s3://b/p/", False, True)
    assert ModelSource.of({"ModelDataUrl": "s3://b/p/"}) == ModelSource("s3://b/p/", False, True)  # a prefix
