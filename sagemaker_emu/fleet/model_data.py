"""Put a model's artifacts into an instance's own model directory, safely.

`ModelDataUrl` may be an `s3://` object (a `model.tar.gz`), or a local `file://` path to a
`model.tar.gz` or to a directory; `ModelDataSource.S3DataSource` names an S3 prefix or object,
compressed or not. S3 objects come from an `ObjectStore` (fleet/api.py), which keeps one
local copy per object version; each instance unpacks that copy into its own directory. A
tarball is unpacked with the standard library's `data` filter: no absolute paths, no
`..`, no links that leave the directory, no device files. A directory must lie inside an
allowed root; it is copied as regular files and directories only, and a link is followed
only to a regular file or directory inside an allowed root (never to /etc or /dev/zero).
"""

from __future__ import annotations

import os
import shutil
import stat
import tarfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Sequence
from urllib.parse import unquote, urlparse

from sagemaker_emu.fleet.api import ObjectStore
from sagemaker_emu.fleet.host_access import within


class ModelDataError(Exception):
    pass


@dataclass(frozen=True)
class ModelSource:
    """Where a container's model data is, and in what form."""

    url: str
    compressed: bool = True  # a .tar.gz archive (ModelDataUrl; S3DataSource with CompressionType Gzip)
    prefix: bool = False  # S3DataSource with S3DataType S3Prefix: every object under the URL

    @classmethod
    def of(cls, container: dict[str, Any]) -> "ModelSource | None":
        s3 = (container.get("ModelDataSource") or {}).get("S3DataSource")
        if s3:
            return cls(s3["S3Uri"], compressed=s3.get("CompressionType") == "Gzip",
                       prefix=s3.get("S3DataType") == "S3Prefix")
        url = container.get("ModelDataUrl")
        if url and url.startswith("s3://") and url.endswith("/"):  # a prefix of uncompressed files (SDK v3 sends one)
            return cls(url, compressed=False, prefix=True)
        return cls(url) if url else None


def local_path(url: str) -> Path:
    parsed = urlparse(url)
    if parsed.scheme != "file":
        raise ModelDataError(f"sagemaker-emu cannot fetch {parsed.scheme}:// model data ({url}); "
                             "use an s3:// URL, or a file:// URL to a local model.tar.gz or directory")
    return Path(unquote(parsed.netloc + parsed.path))


def prepare(source: ModelSource | None, model_dir: Path, roots: Sequence[Path] = (),
            objects: ObjectStore | None = None, unpack: bool = True, only: frozenset[str] | None = None) -> None:
    """Fill `model_dir` (created empty) from `source`; nothing to do without one. A directory
    must be inside one of `roots`. With `unpack` false (a built-in image, which reads no model
    files), the data is only fetched, so that a missing object still fails as on SageMaker;
    with `only`, just the files of those names are unpacked (LMI's serving.properties, not the
    weights beside it)."""
    model_dir.mkdir(parents=True, exist_ok=True)
    if source is None:
        return
    url = source.url
    if url.startswith("s3://"):
        if objects is None:
            raise ModelDataError(f"sagemaker-emu has no S3 to fetch {url} from")
        try:
            fetched = objects.fetch(url, prefix=source.prefix)
        except LookupError as exc:
            raise ModelDataError(str(exc)) from None
        if not unpack:
            return
        if source.prefix and only is None:
            shutil.copytree(fetched, model_dir, dirs_exist_ok=True)  # our own cache: plain files only
        elif source.prefix and only is not None:
            for found in fetched.rglob("*"):
                if found.name in only and found.is_file():
                    (model_dir / found.relative_to(fetched)).parent.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(found, model_dir / found.relative_to(fetched))
        elif source.compressed:
            _untar(fetched, model_dir, url, only)
        elif only is None or Path(urlparse(url).path).name in only:
            shutil.copyfile(fetched, model_dir / Path(urlparse(url).path).name)
        return
    path = local_path(url)
    try:
        if not unpack:
            if not path.exists():
                raise ModelDataError(f"Model data {url} does not exist")
            return
        _prepare_local(path, url, model_dir, roots, only)
    except OSError as exc:  # a name too long, a file that vanished, no permission
        raise ModelDataError(f"Model data {url} cannot be read: {exc.strerror or exc}") from None


def _untar(archive: Path, model_dir: Path, url: str, only: frozenset[str] | None = None) -> None:
    try:
        with tarfile.open(archive) as tar:
            members = None if only is None else [m for m in tar if m.isfile() and PurePosixPath(m.name).name in only]
            tar.extractall(model_dir, members=members, filter="data")
    except tarfile.TarError as exc:
        raise ModelDataError(f"Could not unpack {url}: {exc}") from None


def _prepare_local(source: Path, url: str, model_dir: Path, roots: Sequence[Path],
                   only: frozenset[str] | None = None) -> None:
    if source.is_dir():
        if not within(source, roots):
            allowed = ", ".join(str(r) for r in roots) or "none"
            raise ModelDataError(f"Model data directory {url} is outside the directories sagemaker-emu may read "
                                 f"({allowed}); start the server with --model-root DIR to allow it")
        _copy_tree(source, model_dir, roots, seen=set(), only=only)
    elif source.is_file():
        _untar(source, model_dir, url, only)
    else:
        raise ModelDataError(f"Model data {url} does not exist")


def _copy_tree(source: Path, target: Path, roots: Sequence[Path], seen: set[Path],
               only: frozenset[str] | None = None) -> None:
    real = source.resolve()
    if real in seen:  # a link back up the tree
        return
    seen.add(real)
    target.mkdir(parents=True, exist_ok=True)
    for entry in sorted(source.iterdir()):
        if entry.is_symlink() and not within(entry, roots):
            raise ModelDataError(f"Model data link {entry} points outside the allowed directories "
                                 f"(to {entry.resolve()})")
        try:
            mode = entry.stat().st_mode  # of the link's target
        except OSError as exc:
            raise ModelDataError(f"Model data entry {entry} cannot be read: {exc.strerror}") from None
        if stat.S_ISDIR(mode):
            _copy_tree(entry, target / entry.name, roots, seen, only)
        elif stat.S_ISREG(mode) and only is not None and entry.name not in only:
            continue
        elif stat.S_ISREG(mode):
            shutil.copyfile(entry, target / entry.name)
            os.chmod(target / entry.name, stat.S_IMODE(mode))
        else:
            raise ModelDataError(f"Model data entry {entry} is not a regular file or directory")
