"""LMI's own configuration, read as DJL Serving reads it, for the few options llm-sim acts on.

An LMI model is configured by `option.<name>=<value>` lines in `serving.properties`, at the top
of the model data or in a model folder beneath it (DJL Serving's model store), or by
`OPTION_<NAME>` environment variables; a name set in both takes the file's value.
"""

from __future__ import annotations

from pathlib import Path

from sagemaker_emu.worker.builtin.knobs import BadKnob

FILE = "serving.properties"
_MAX_FILE_BYTES = 1 << 20  # a properties file is a few lines; do not read a hostile giant


def _properties_file(model_dir: Path) -> Path | None:
    if (model_dir / FILE).is_file():
        return model_dir / FILE
    folders = sorted(p for p in model_dir.iterdir() if p.is_dir()) if model_dir.is_dir() else []
    return next((folder / FILE for folder in folders if (folder / FILE).is_file()), None)


def _parse(text: str) -> dict[str, str]:
    options = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        key = key.strip()
        if sep and key.startswith("option.") and not key.startswith("#"):
            options[key[len("option."):]] = value.strip()
    return options


def lmi_options(env: dict[str, str]) -> dict[str, str]:
    """`{name: value}` from `OPTION_<NAME>` variables, then serving.properties under SM_MODEL_DIR."""
    options = {name[len("OPTION_"):].lower(): value for name, value in env.items() if name.startswith("OPTION_")}
    model_dir = env.get("SM_MODEL_DIR")
    found = _properties_file(Path(model_dir)) if model_dir else None
    if found is not None:
        with open(found, "rb") as f:
            options.update(_parse(f.read(_MAX_FILE_BYTES).decode("utf-8", "replace")))
    return options


def batch_size(options: dict[str, str]) -> int | None:
    """`max_rolling_batch_size`: how many sequences decode at once."""
    raw = options.get("max_rolling_batch_size")
    if raw is None:
        return None
    if not raw.isdigit() or int(raw) < 1:
        raise BadKnob(f"LMI option max_rolling_batch_size={raw!r} must be a whole number of at least 1")
    return int(raw)


def streams_everything(options: dict[str, str]) -> bool:
    """`enable_streaming`: every answer streams as JSON lines, without `"stream": true`."""
    raw = options.get("enable_streaming", "false").lower()
    if raw not in ("true", "false"):
        raise BadKnob(f"LMI option enable_streaming={options['enable_streaming']!r} must be true or false")
    return raw == "true"
