"""Decide what runs an instance, from the model's container definition.

1. `sagemaker-emu/<name>`: a built-in image.
2. An image in the `--image-map` file: a local command that serves the container contract
   on `SAGEMAKER_BIND_TO_PORT`, or the URL of an instance already running elsewhere.
3. One of AWS's own serving images (`aws_images.json`, data): the LLM servers (TGI, LMI,
   vLLM) run llm-sim speaking their API; the framework images run the model's inference.py.
4. Any other image whose model ships an `inference.py`: the framework-container convention.
"""

from __future__ import annotations

import functools
import json
import re
import shlex
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from sagemaker_emu.worker.builtin import BUILTINS, builtin_name
from sagemaker_emu.worker.toolkit import find_program


@dataclass(frozen=True)
class Launch:
    """How to bring up one instance. Exactly one of builtin / toolkit / command / url."""

    builtin: str | None = None
    toolkit: bool = False
    command: tuple[str, ...] = ()
    cwd: str | None = None
    url: str | None = None
    env: dict[str, str] = field(default_factory=dict)  # extra environment from the image map
    model_files: tuple[str, ...] = ()  # the model data's files a built-in image reads (LMI's serving.properties)


class ImageError(Exception):
    pass


class ImageMap:
    """`image URI -> {"command": [...] | "...", "cwd": "...", "env": {...}}` or `{"url": "..."}`."""

    def __init__(self, entries: dict[str, dict] | None = None) -> None:
        self.entries = entries or {}

    @classmethod
    def load(cls, path: str | Path) -> "ImageMap":
        path = Path(path)
        text = path.read_text()
        data = tomllib.loads(text) if path.suffix == ".toml" else json.loads(text)
        images = data.get("images", data)
        entries = {}
        for image, entry in images.items():
            if not isinstance(entry, dict) or ("command" in entry) == ("url" in entry):
                raise ValueError(f"{path}: image {image!r} needs exactly one of 'command' or 'url'")
            entries[image] = entry
        return cls(entries)

    def launch(self, image: str, base_dir: Path | None = None) -> Launch | None:
        entry = self.entries.get(image)
        if entry is None:
            return None
        env = {str(k): str(v) for k, v in entry.get("env", {}).items()}
        if "url" in entry:
            return Launch(url=entry["url"].rstrip("/"), env=env)
        command = entry["command"]
        argv = tuple(shlex.split(command) if isinstance(command, str) else map(str, command))
        return Launch(command=argv, cwd=entry.get("cwd"), env=env)


# A private ECR URI of AWS's images, or the ECR Public Gallery's copy of a Deep Learning Container
_ECR = re.compile(r"^(?:\d{12}\.dkr\.ecr\.[a-z0-9-]+\.amazonaws\.com(?:\.cn)?|public\.ecr\.aws/deep-learning-containers)"
                  r"/([^:@]+)")


@dataclass(frozen=True)
class AwsFamily:
    family: str
    repository: re.Pattern
    builtin: str | None = None
    env: dict[str, str] = field(default_factory=dict)
    toolkit: bool = False
    packages: tuple[str, ...] = ()
    model_files: tuple[str, ...] = ()


@functools.cache
def aws_families() -> tuple[AwsFamily, ...]:
    data = json.loads((Path(__file__).with_name("aws_images.json")).read_text())
    return tuple(AwsFamily(f["family"], re.compile(f["repository"]), f.get("builtin"), f.get("env", {}),
                           f.get("toolkit", False), tuple(f.get("packages", ())), tuple(f.get("model_files", ())))
                 for f in data["families"])


def aws_family(image: str) -> AwsFamily | None:
    """The family of one of AWS's serving images (by its ECR repository), else None."""
    match = _ECR.match(image)
    if match is None:
        return None
    return next((f for f in aws_families() if f.repository.search(match.group(1))), None)


def resolve(container: dict, model_dir: Callable[[], Path], image_map: ImageMap, multi_model: bool = False) -> Launch:
    """`model_dir()` unpacks the model's files; called only when an inference.py is looked for.
    A multi-model container (`multi_model`) has no model data to look into at the start: AWS's
    framework images run the inference.py in each model's archive (code/), as SageMaker's own
    do, and a mapped image must speak the multi-model contract itself."""
    image = container.get("Image", "")
    name = builtin_name(image)
    if name is not None:
        return Launch(builtin=name)
    mapped = image_map.launch(image)
    if mapped is not None:
        return mapped
    family = aws_family(image)
    if family is not None and family.builtin:
        if multi_model:
            raise ImageError(f"{family.family} images ('{image}') do not serve multi-model endpoints (Mode "
                             "MultiModel); host several models on one endpoint with inference components instead.")
        return Launch(builtin=family.builtin, env=dict(family.env), model_files=family.model_files)
    if multi_model:
        if family is not None:
            return Launch(toolkit=True)
        raise ImageError(f"sagemaker-emu cannot run image '{image}' as a multi-model container: it is not a built-in "
                         "image, not an AWS framework image (whose models each bring code/inference.py), and not in "
                         "the --image-map file.")
    if find_program(model_dir(), container.get("Environment", {})) is not None:
        return Launch(toolkit=True)
    if family is not None:
        raise ImageError(
            f"sagemaker-emu runs {family.family} images ('{image}') through the model's inference.py, and this "
            "model has none: put one in code/ of the model data (or point SAGEMAKER_SUBMIT_DIRECTORY at it), "
            f"defining model_fn and predict_fn. Its imports ({', '.join(family.packages)}) must be installed "
            "where sagemaker-emu runs; sagemaker-emu installs no ML framework.")
    builtins = ", ".join(f"sagemaker-emu/{n}" for n in BUILTINS)
    raise ImageError(
        f"sagemaker-emu cannot run image '{image}': it is not a built-in image ({builtins}), "
        "not in the --image-map file, and the model has no inference.py (put one in code/ of "
        "the ModelDataUrl archive or directory, or point SAGEMAKER_SUBMIT_DIRECTORY at it)."
    )
