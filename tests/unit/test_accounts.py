"""Access keys to accounts, and what an endpoint policy allows."""

import json

import pytest

from sagemaker_emu.accounts import Accounts
from sagemaker_emu.control import endpoint_policies
from sagemaker_emu.errors import InvalidInput

ENDPOINT = "arn:aws:sagemaker:us-west-2:444455556666:endpoint/shared"
ROUTER = "arn:aws:sagemaker:us-east-1:111122223333:inference-router/r"


def test_access_keys_map_to_accounts_by_file_then_by_twelve_digits_else_the_default(tmp_path):
    path = tmp_path / "accounts"
    path.write_text("[team-a]\naws_access_key_id = AKIATEAMA\naws_account_id = 111122223333\n"
                    "[no-account]\naws_access_key_id = AKIANONE\n")
    accounts = Accounts.from_file(path, "123456789012")
    assert accounts.of_key("AKIATEAMA") == "111122223333"
    assert accounts.of_key("444455556666") == "444455556666"
    assert accounts.of_key("AKIANONE") == accounts.of_key(None) == "123456789012"
    header = "AWS4-HMAC-SHA256 Credential=AKIATEAMA/20261207/us-east-1/sagemaker/aws4_request, SignedHeaders=host, " \
             "Signature=" + "0" * 64
    assert accounts.of_authorization(header) == "111122223333"
    path.write_text("[bad]\naws_access_key_id = K\naws_account_id = 12\n")
    with pytest.raises(ValueError, match="twelve digits"):
        Accounts.from_file(path, "123456789012")


def statement(effect: str, action: str = "sagemaker:InvokeEndpoint", **extra) -> dict:
    return {"Effect": effect, "Principal": {"AWS": "arn:aws:iam::111122223333:root"}, "Action": action,
            "Resource": ENDPOINT, **extra}


def test_an_explicit_deny_wins_and_a_router_condition_never_holds_for_a_direct_call():
    allow = statement("Allow", Condition={"ArnLike": {"sagemaker:SourceInferenceRouterArn": ROUTER[:-1] + "*"}})
    policy = json.dumps({"Statement": [allow]})
    endpoint_policies.check(policy, ENDPOINT)
    assert endpoint_policies.allows(policy, "111122223333", endpoint_policies.INVOKE, ENDPOINT, ROUTER)
    assert not endpoint_policies.allows(policy, "111122223333", endpoint_policies.INVOKE, ENDPOINT, None)
    assert not endpoint_policies.allows(policy, "999999999999", endpoint_policies.INVOKE, ENDPOINT, ROUTER)
    assert not endpoint_policies.allows(policy, "111122223333", endpoint_policies.DESCRIBE, ENDPOINT, ROUTER)
    denied = json.dumps({"Statement": [allow, statement("Deny", "sagemaker:*")]})
    assert not endpoint_policies.allows(denied, "111122223333", endpoint_policies.INVOKE, ENDPOINT, ROUTER)
    assert not endpoint_policies.allows(None, "111122223333", endpoint_policies.INVOKE, ENDPOINT, ROUTER)


@pytest.mark.parametrize("change, rule", [
    ({"Action": "s3:GetObject"}, "Action must be among"),
    ({"Resource": "arn:aws:sagemaker:us-west-2:444455556666:endpoint/other"}, "Resource must be"),
    ({"Principal": "*"}, "wildcard principal"),
    ({"Effect": "Maybe"}, "Effect must be"),
    ({"Condition": {"StringEquals": {"aws:SourceIp": "1.2.3.4"}}}, "a Condition may only test"),
])
def test_a_policy_that_breaks_a_rule_is_refused_naming_it(change, rule):
    with pytest.raises(InvalidInput, match=rule):
        endpoint_policies.check(json.dumps({"Statement": [{**statement("Allow"), **change}]}), ENDPOINT)
    with pytest.raises(InvalidInput, match="ASCII"):
        endpoint_policies.check('{"Statement": "é"}', ENDPOINT)
