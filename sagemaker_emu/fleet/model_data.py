"""Put a model's artifacts into an instance's own model directory, safely.

`ModelDataUrl` may be a local `file://` path to a `model.tar.gz` or to a directory. A
tarball is unpacked with the standard library's `data` filter: no absolute paths, no
`..`, no links that leave the directory, no device files.
"""

from __future__ import annotations

import shutil
import tarfile
from pathlib import Path
from urllib.parse import unquote, urlparse


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


def prepare(url: str | None, model_dir: Path) -> None:
    """Fill `model_dir` (created empty) from `url`; nothing to do without a URL."""
    model_dir.mkdir(parents=True, exist_ok=True)
    if not url:
        return
    source = local_path(url)
    if source.is_dir():
        shutil.copytree(source, model_dir, dirs_exist_ok=True, symlinks=False)
    elif source.is_file():
        try:
            with tarfile.open(source) as tar:
                tar.extractall(model_dir, filter="data")
        except tarfile.TarError as exc:
            raise ModelDataError(f"Could not unpack {url}: {exc}") from None
    else:
        raise ModelDataError(f"Model data {url} does not exist")
