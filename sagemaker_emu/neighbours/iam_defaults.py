"""What a deployment tool asks IAM before it deploys, answered as for a user who may: the SDK
(v3's ModelBuilder, for one) reads the execution role it was given and simulates its policy.

In front of moto's IAM app: GetRole of a role that does not exist yet creates it first (path
`/`, trusting sagemaker.amazonaws.com), so any role ARN in the account resolves; and
SimulatePrincipalPolicy, which moto does not implement, allows every action asked about.
Everything else goes to moto unchanged."""

from __future__ import annotations

import io
import json
import logging
from typing import Callable, Iterable
from urllib.parse import parse_qsl

from sagemaker_emu.protocol import query
from sagemaker_emu.protocol.errors import request_id
from sagemaker_emu.service_model import service_model

log = logging.getLogger("sagemaker_emu.neighbours")

TRUST_SAGEMAKER = json.dumps({"Version": "2012-10-17", "Statement": [{
    "Effect": "Allow", "Principal": {"Service": "sagemaker.amazonaws.com"}, "Action": "sts:AssumeRole"}]})
MAX_FORM_BYTES = 1024 * 1024


class IamDefaults:
    def __init__(self, app: Callable, account: str) -> None:
        self.app = app
        self.account = account

    def __call__(self, environ: dict, start_response) -> Iterable[bytes]:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        if not (environ.get("CONTENT_TYPE") or "").startswith("application/x-www-form-urlencoded") or \
                length > MAX_FORM_BYTES:
            return self.app(environ, start_response)
        body = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = io.BytesIO(body)  # moto reads it again
        form = dict(parse_qsl(body.decode("utf-8", errors="replace"), keep_blank_values=True))
        action = form.get("Action")
        if action == "GetRole" and form.get("RoleName"):
            self._ensure_role(form["RoleName"])
        elif action == "SimulatePrincipalPolicy":
            return self._simulate(form, start_response)
        return self.app(environ, start_response)

    def _ensure_role(self, name: str) -> None:
        from moto.iam.models import iam_backends
        from moto.iam.exceptions import NotFoundException

        backend = iam_backends[self.account]["global"]
        try:
            backend.get_role(name)
        except NotFoundException:
            backend.create_role(role_name=name, assume_role_policy_document=TRUST_SAGEMAKER, path="/",
                                permissions_boundary=None, description="Created by sagemaker-emu on first GetRole",
                                tags=[], max_session_duration=None)
            log.info("IAM role %s created on first use (trusting sagemaker.amazonaws.com)", name)

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
