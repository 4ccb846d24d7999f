"""PutEndpointPolicy, GetEndpointPolicy, DeleteEndpointPolicy, and what a policy allows.

An endpoint policy lets other accounts send requests to the endpoint (or its inference
components) through an inference router, and describe it so that their routers can show its
RoutingStatus. The rules it must follow, as the emulator checks them (docs/decisions.md): a
JSON object with a `Statement` (one or a list); each statement's `Effect` is Allow or Deny, its
`Principal` names accounts (`{"AWS": "arn:aws:iam::111122223333:root"}` or the bare id, one or a
list; never `*`), its `Action` is among ACTIONS (`sagemaker:*` for all of them), its `Resource`
is the endpoint's ARN or one of its inference components' (`*` allowed at the end), and its
`Condition`, if any, tests `sagemaker:SourceInferenceRouterArn` with ArnEquals or ArnLike (or
their String forms). Evaluation is IAM's: an explicit Deny wins, else an Allow that matches.
The router calls a destination as its caller, so the principal is the caller's account and the
condition key holds the router's ARN.
"""

from __future__ import annotations

import fnmatch
import functools
import json
from typing import TYPE_CHECKING, Any

from sagemaker_emu import arns
from sagemaker_emu.control.registry import Call, operation
from sagemaker_emu.control.resources import Endpoint, Status

if TYPE_CHECKING:  # the store evaluates policies when it resolves a router's destinations
    from sagemaker_emu.control.store import Backend
from sagemaker_emu.errors import InvalidInput, ServiceError

INVOKE, INVOKE_ASYNC, DESCRIBE = "sagemaker:InvokeEndpoint", "sagemaker:InvokeEndpointAsync", "sagemaker:DescribeEndpoint"
ACTIONS = (INVOKE, INVOKE_ASYNC, DESCRIBE)
ROUTER_KEY = "sagemaker:SourceInferenceRouterArn"
OPERATORS = ("ArnEquals", "ArnLike", "StringEquals", "StringLike")


def _listed(value: Any) -> list:
    return value if isinstance(value, list) else [value]


def _account_of(principal: str) -> str | None:
    if len(principal) == 12 and principal.isdigit():
        return principal
    parsed = arns.parse(principal)
    return parsed.account if parsed is not None and parsed.service == "iam" else None


def check(policy: str, endpoint_arn: str) -> list[dict[str, Any]]:
    """The policy's statements, or InvalidInput saying which rule it breaks."""
    if not policy.isascii():
        raise InvalidInput("The endpoint policy can contain only ASCII characters.")
    try:
        document = json.loads(policy)
    except ValueError:
        raise InvalidInput("The endpoint policy is not valid JSON.") from None
    if not isinstance(document, dict) or "Statement" not in document:
        raise InvalidInput("The endpoint policy must be a JSON object with a Statement.")
    statements = _listed(document["Statement"])
    if not statements or not all(isinstance(s, dict) for s in statements):
        raise InvalidInput("The endpoint policy's Statement must be one statement object or a list of them.")
    for n, statement in enumerate(statements, 1):
        where = f"Statement {statement.get('Sid') or n}"
        if statement.get("Effect") not in ("Allow", "Deny"):
            raise InvalidInput(f"{where}: Effect must be Allow or Deny.")
        principal = statement.get("Principal")
        aws = principal.get("AWS") if isinstance(principal, dict) else None
        if aws is None or not all(isinstance(p, str) and _account_of(p) for p in _listed(aws)):
            raise InvalidInput(f"{where}: Principal must name AWS accounts, as {{\"AWS\": "
                               "\"arn:aws:iam::111122223333:root\"}; a wildcard principal is not allowed.")
        actions = _listed(statement.get("Action"))
        if not actions or not all(a == "sagemaker:*" or a in ACTIONS for a in actions):
            raise InvalidInput(f"{where}: Action must be among {', '.join(ACTIONS)}.")
        resources = _listed(statement.get("Resource"))
        if not resources or not all(isinstance(r, str) and _names_endpoint(r, endpoint_arn) for r in resources):
            raise InvalidInput(f"{where}: Resource must be {endpoint_arn} or an inference component's ARN in the same "
                               "account and Region.")
        condition = statement.get("Condition", {})
        if not isinstance(condition, dict) or any(
                op not in OPERATORS or not isinstance(test, dict) or set(test) != {ROUTER_KEY}
                for op, test in condition.items()):
            raise InvalidInput(f"{where}: a Condition may only test {ROUTER_KEY} with {', '.join(OPERATORS)}.")
    return statements


def _names_endpoint(resource: str, endpoint_arn: str) -> bool:
    prefix = endpoint_arn.rsplit(":", 1)[0] + ":"
    return resource == endpoint_arn or resource.startswith(prefix + "inference-component/")


def allows(policy: str | None, account: str, action: str, resource_arn: str, router_arn: str | None) -> bool:
    """Whether `account` may do `action` on `resource_arn` (the endpoint, or an inference
    component on it) through router `router_arn` (None: a direct call). The policy was checked
    when it was put."""
    if policy is None:
        return False
    allowed = False
    for statement in _statements(policy):
        if _matches(statement, account, action, resource_arn, router_arn):
            if statement["Effect"] == "Deny":
                return False
            allowed = True
    return allowed


@functools.lru_cache(maxsize=256)
def _statements(policy: str) -> list[dict[str, Any]]:
    """A put policy's statements, parsed once: routers read them on every invocation."""
    return _listed(json.loads(policy)["Statement"])


def _matches(statement: dict[str, Any], account: str, action: str, resource_arn: str, router_arn: str | None) -> bool:
    if account not in {_account_of(p) for p in _listed(statement["Principal"]["AWS"])}:
        return False
    if not any(a in (action, "sagemaker:*") for a in _listed(statement["Action"])):
        return False
    if not any(fnmatch.fnmatchcase(resource_arn, r) for r in _listed(statement["Resource"])):
        return False
    for op, test in statement.get("Condition", {}).items():
        if router_arn is None:  # the key is absent on direct calls: a condition on it does not hold
            return False
        patterns = _listed(test[ROUTER_KEY])
        if op.endswith("Like"):
            if not any(fnmatch.fnmatchcase(router_arn, p) for p in patterns):
                return False
        elif router_arn not in patterns:
            return False
    return True


def _endpoint(backend: Backend, name: str) -> Endpoint:
    endpoint = backend.endpoints.get(name.lower())
    if endpoint is None:
        raise ServiceError("ResourceNotFound", f'Could not find endpoint "{backend.arn("endpoint", name)}".')
    return endpoint


@operation
def put_endpoint_policy(backend: Backend, params: dict, call: Call) -> dict:
    endpoint = _endpoint(backend, params["EndpointName"])
    if endpoint.status in (Status.DELETING, Status.FAILED):
        raise InvalidInput(f"Cannot attach a policy to endpoint {endpoint.arn}: its status is {endpoint.status.value}.")
    check(params["ResourcePolicy"], endpoint.arn)
    endpoint.policy = params["ResourcePolicy"]
    return {"EndpointArn": endpoint.arn}


@operation
def get_endpoint_policy(backend: Backend, params: dict, call: Call) -> dict:
    endpoint = _endpoint(backend, params["EndpointName"])
    if endpoint.policy is None:
        raise InvalidInput(f"Endpoint {endpoint.arn} has no endpoint policy.")
    return {"EndpointName": endpoint.name, "EndpointArn": endpoint.arn, "ResourcePolicy": endpoint.policy}


@operation
def delete_endpoint_policy(backend: Backend, params: dict, call: Call) -> dict:
    _endpoint(backend, params["EndpointName"]).policy = None
    return {}
