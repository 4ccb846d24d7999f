"""What a deployment tool asks IAM and STS before it deploys, answered as for a user who may:
the SDK (v2's and v3's `get_execution_role()`, v3's ModelBuilder) reads its caller's role, reads
the execution role it was given and simulates its policy.

In front of moto's IAM app: GetRole of a role that does not exist yet creates it first (path
`/`, trusting sagemaker.amazonaws.com), so any role ARN in the account resolves; and
SimulatePrincipalPolicy, which moto does not implement, allows every action asked about.

In front of moto's STS app: GetCallerIdentity signed with a key moto did not issue (the dummy
`testing` key of `sagemaker-emu env`) answers an assumed role, `EXECUTION_ROLE`, whose role
exists, as on a SageMaker notebook, instead of moto's `user/moto`, which the SDK refuses as an
execution role. Keys from moto's AssumeRole or IAM users answer as moto says.
Everything else goes to moto unchanged."""

from __future__ import annotations

import io
import json
import logging
import threading
from typing import Callable, Iterable
from urllib.parse import parse_qsl

from sagemaker_emu import arns
from sagemaker_emu.protocol import query
from sagemaker_emu.protocol.errors import request_id
from sagemaker_emu.protocol.services import credential
from sagemaker_emu.service_model import service_model

log = logging.getLogger("sagemaker_emu.neighbours")

EXECUTION_ROLE = "SageMakerEmuExecutionRole"  # the caller's role, for the SDK's get_execution_role()
SESSION = "sagemaker-emu"
TRUST_SAGEMAKER = json.dumps({"Version": "2012-10-17", "Statement": [{
    "Effect": "Allow", "Principal": {"Service": "sagemaker.amazonaws.com"}, "Action": "sts:AssumeRole"}]})
_creating = threading.Lock()  # two first calls at once must not both create the role


def _form(environ: dict) -> dict[str, str] | None:
    """A query-protocol call's form, read and put back for moto; None if it is not one. Its size
    is bounded in front of these apps (embedded.py's _BoundedForms)."""
    length = int(environ.get("CONTENT_LENGTH") or 0)
    if not (environ.get("CONTENT_TYPE") or "").startswith("application/x-www-form-urlencoded"):
        return None
    body = environ["wsgi.input"].read(length) if length else b""
    environ["wsgi.input"] = io.BytesIO(body)  # moto reads it again
    return dict(parse_qsl(body.decode("utf-8", errors="replace"), keep_blank_values=True))


def ensure_role(account: str, name: str) -> str:
    """Create role `name` in the embedded IAM unless it exists; its ARN."""
    from moto.iam.models import iam_backends
    from moto.iam.exceptions import NotFoundException

    backend = iam_backends[account]["global"]
    with _creating:
        try:
            return backend.get_role(name).arn
        except NotFoundException:
            pass
        role = backend.create_role(role_name=name, assume_role_policy_document=TRUST_SAGEMAKER, path="/",
                                   permissions_boundary=None, description="Created by sagemaker-emu on first use",
                                   tags=[], max_session_duration=None)
    log.info("IAM role %s created on first use (trusting sagemaker.amazonaws.com)", name)
    return role.arn


class _InFrontOfMoto:
    def __init__(self, app: Callable, account: str) -> None:
        self.app = app
        self.account = account


class IamDefaults(_InFrontOfMoto):
    def __call__(self, environ: dict, start_response) -> Iterable[bytes]:
        form = _form(environ) or {}
        action = form.get("Action")
        if action == "GetRole" and form.get("RoleName"):
            ensure_role(self.account, form["RoleName"])
        elif action == "SimulatePrincipalPolicy":
            return self._simulate(form, start_response)
        return self.app(environ, start_response)

    def _simulate(self, form: dict[str, str], start_response) -> Iterable[bytes]:
        model = service_model("iam").operation_model("SimulatePrincipalPolicy")
        params = query.params_of(model.input_shape, form)
        resources = params.get("ResourceArns") or ["*"]
        results = [{"EvalActionName": action, "EvalResourceName": resource, "EvalDecision": "allowed",
                    "MatchedStatements": [], "MissingContextValues": []}
                   for action in params.get("ActionNames", []) for resource in resources]
        data = query.response(model, {"EvaluationResults": results, "IsTruncated": False}, request_id(),
                              service_model("iam").metadata["xmlNamespace"])
        start_response("200 OK", [("Content-Type", "text/xml"), ("Content-Length", str(len(data)))])
        return [data]


class StsDefaults(_InFrontOfMoto):
    def __call__(self, environ: dict, start_response) -> Iterable[bytes]:
        form = _form(environ)
        scope = credential(environ)
        if form and form.get("Action") == "GetCallerIdentity" and not self._issued(scope[0] if scope else None):
            return self._caller(start_response)
        return self.app(environ, start_response)

    def _issued(self, key: str | None) -> bool:
        """Whether moto knows the key: from its AssumeRole, or an IAM user's."""
        from moto.iam.models import iam_backends
        from moto.sts.models import sts_backends

        if not key:
            return False
        return (sts_backends[self.account]["aws"].get_assumed_role_from_access_key(key) is not None
                or iam_backends[self.account]["global"].get_user_from_access_key_id(key) is not None)

    def _caller(self, start_response) -> Iterable[bytes]:
        ensure_role(self.account, EXECUTION_ROLE)
        model = service_model("sts").operation_model("GetCallerIdentity")
        identity = {"UserId": f"AROA{self.account}EMU:{SESSION}", "Account": self.account,
                    "Arn": arns.global_arn("sts", "", self.account, f"assumed-role/{EXECUTION_ROLE}/{SESSION}")}
        data = query.response(model, identity, request_id(), service_model("sts").metadata["xmlNamespace"])
        start_response("200 OK", [("Content-Type", "text/xml"), ("Content-Length", str(len(data)))])
        return [data]

