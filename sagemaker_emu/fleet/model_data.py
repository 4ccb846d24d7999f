"""Put a model's artifacts into an instance's own model directory, safely.

`ModelDataUrl` may be a local `file://` path to a `model.tar.gz` or to a directory. A
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
from pathlib import Path
from typing import Sequence
from urllib.parse import unquote, urlparse

from sagemaker_emu.fleet.host_access import within


class ModelDataError(Exception):
    pass


def local_path(url: str) -> Path:
    parsed = urlparse(url)
    if parsed.scheme != "file":
        raise ModelDataError(
            f"sagemaker-emu cannot fetch {parsed.scheme}:// model data ({url}); "
            "use a file:// URL to a local model.tar.gz or directory"
        )
    return Path(unquote(parsed.netloc + parsed.path))


def prepare(url: str | None, model_dir: Path, roots: Sequence[Path] = ()) -> None:
    """Fill `model_dir` (created empty) from `url`; nothing to do without a URL. A directory
    `url` must be inside one of `roots`."""
    model_dir.mkdir(parents=True, exist_ok=True)
    if not url:
        return
    source = local_path(url)
    if source.is_dir():
        if not within(source, roots):
            allowed = ", ".join(str(r) for r in roots) or "none"
            raise ModelDataError(f"Model data directory {url} is outside the directories sagemaker-emu may read "
                                 f"({allowed}); start the server with --model-root DIR to allow it")
        _copy_tree(source, model_dir, roots, seen=set())
    elif source.is_file():
        try:
            with tarfile.open(source) as tar:
                tar.extractall(model_dir, filter="data")
        except tarfile.TarError as exc:
            raise ModelDataError(f"Could not unpack {url}: {exc}") from None
    else:
        raise ModelDataError(f"Model data {url} does not exist")


def _copy_tree(source: Path, target: Path, roots: Sequence[Path], seen: set[Path]) -> None:
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
            _copy_tree(entry, target / entry.name, roots, seen)
        elif stat.S_ISREG(mode):
            shutil.copyfile(entry, target / entry.name)
            os.chmod(target / entry.name, stat.S_IMODE(mode))
        else:
            raise ModelDataError(f"Model data entry {entry} is not a regular file or directory")
