"""Clients that build a fixed AWS address themselves reach the emulator too.

The SageMaker SDK (v2 and v3) asks STS who is calling, for `get_execution_role()` and
`get_caller_identity_arn()`, at `https://sts.<region>.amazonaws.com`: an `endpoint_url` it builds
from botocore's endpoint data (read with a loader that ignores `AWS_DATA_PATH`), so the
`AWS_ENDPOINT_URL_STS` variable that points every other STS client here is bypassed. While this
hook is installed, an explicit `endpoint_url` on an AWS host yields to the service's
`AWS_ENDPOINT_URL_<SERVICE>` variable when one is set, as if the caller had not named it.
Where no such variable is set, or the URL is not an AWS host, nothing changes.

`running()` and the pytest plugin install it in their own process; `sagemaker-emu env` puts a
copy of this file, as `sitecustomize.py`, in a directory it adds to PYTHONPATH, so scripts run
from that shell have it without importing sagemaker-emu. Hence: the standard library only, and
botocore is patched when something imports it, never imported here.
"""

from __future__ import annotations

import functools
import importlib.util
import inspect
import os
import sys
from urllib.parse import urlsplit

AWS_DOMAINS = (".amazonaws.com", ".amazonaws.com.cn", ".api.aws")
MARK = "_sagemaker_emu_hosts"


def redirected(service_name: str, endpoint_url: str | None) -> str | None:
    """`endpoint_url`, or the service's endpoint variable when the URL names an AWS host."""
    if not endpoint_url or not service_name:
        return endpoint_url
    host = (urlsplit(endpoint_url).hostname or "").lower()
    if not host.endswith(AWS_DOMAINS):
        return endpoint_url
    return os.environ.get(endpoint_variable(service_name)) or endpoint_url


def endpoint_variable(client: str) -> str:
    """The variable botocore reads for `client`'s endpoint, named as botocore names it (from the
    client name, its aliases and hyphenated service ids, without loading the service's model)."""
    from botocore import utils  # imported only when asked: this file may run as sitecustomize

    name = utils.SERVICE_NAME_ALIASES.get(client, client)
    service_id = utils.CLIENT_NAME_TO_HYPHENIZED_SERVICE_ID_OVERRIDES.get(name, name)
    return "AWS_ENDPOINT_URL_" + service_id.replace("-", "_").upper()


def patch(session_module) -> None:
    """Wrap `botocore.session.Session.create_client` (once), where boto3 and the SDK make clients."""
    session_class = session_module.Session
    original = session_class.create_client
    if getattr(original, MARK, False):
        return
    signature = inspect.signature(original)

    @functools.wraps(original)
    def create_client(*args, **kwargs):
        bound = signature.bind(*args, **kwargs)
        url = bound.arguments.get("endpoint_url")
        if url:
            bound.arguments["endpoint_url"] = redirected(bound.arguments.get("service_name"), url)
        return original(*bound.args, **bound.kwargs)

    setattr(create_client, MARK, True)
    session_class.create_client = create_client


class _PatchOnImport:
    """A meta path finder that patches `botocore.session` right after it is first executed."""

    target = "botocore.session"

    def __init__(self) -> None:
        self.busy = False

    def find_spec(self, fullname, path=None, target=None):
        if fullname != self.target or self.busy:
            return None
        self.busy = True  # find the real spec with the other finders, not with ourselves
        try:
            spec = importlib.util.find_spec(fullname)
        finally:
            self.busy = False
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        execute = spec.loader.exec_module

        def exec_module(module) -> None:
            execute(module)
            patch(module)

        spec.loader.exec_module = exec_module  # this loader instance serves only this module
        return spec


def install() -> None:
    """Patch botocore now if it is loaded, else when it is."""
    if "botocore.session" in sys.modules:
        patch(sys.modules["botocore.session"])
    elif not any(isinstance(f, _PatchOnImport) for f in sys.meta_path):
        sys.meta_path.insert(0, _PatchOnImport())


def _chain_next_sitecustomize() -> None:
    """As `sitecustomize.py` this file hides any other one on sys.path (a distribution's):
    run that one too, as Python would have."""
    import importlib

    here = os.path.dirname(os.path.abspath(__file__))
    ours = sys.modules.pop("sitecustomize", None)
    saved = list(sys.path)
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != here]
    try:
        importlib.import_module("sitecustomize")
    except ImportError:
        pass
    except Exception as exc:  # site.py reports and goes on; so do we
        print(f"Error in sitecustomize; set PYTHONVERBOSE for traceback:\n{type(exc).__name__}: {exc}",
              file=sys.stderr)
    finally:
        sys.path[:] = saved
        if ours is not None:
            sys.modules["sitecustomize"] = ours


if __name__ == "sitecustomize":
    install()
    _chain_next_sitecustomize()
