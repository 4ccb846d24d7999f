"""What a request may reach on the host: directories and the worker's environment.

Running the user's own model code is the product; a CreateModel request that names any host
directory as code, or sets a variable that makes the interpreter or the dynamic loader run
something else, is not. Directories are allowed inside the model's own data or inside the
roots the user allowed (`serve --model-root`, default: the directory the server runs in).
"""

from __future__ import annotations

import fnmatch
from pathlib import Path
from typing import Iterable

# Variables that change which interpreter, libraries or commands a worker runs. They are not
# taken from a request's Environment (an --image-map entry, the user's own file, may set them).
# PYTHON* covers PYTHONPATH, PYTHONSTARTUP, PYTHONHOME, PYTHONINSPECT, PYTHONBREAKPOINT, ...
DENIED_ENV = ("LD_*", "DYLD_*", "PYTHON*", "PATH", "BROWSER", "BASH_ENV", "ENV", "SHELL", "PERL5LIB",
              "PERL5OPT", "NODE_OPTIONS", "GCONV_PATH", "HOSTALIASES")


def request_environment(env: dict[str, str]) -> tuple[dict[str, str], list[str]]:
    """The variables a worker may take from a request, and the names left out."""
    kept, dropped = {}, []
    for name, value in env.items():
        if any(fnmatch.fnmatchcase(name.upper(), pattern) for pattern in DENIED_ENV):
            dropped.append(name)
        else:
            kept[name] = value
    return kept, dropped


def within(path: Path, roots: Iterable[Path]) -> bool:
    """True when `path`, with every link resolved, is one of `roots` or inside one."""
    real = path.resolve()
    return any(real == root.resolve() or real.is_relative_to(root.resolve()) for root in roots)
