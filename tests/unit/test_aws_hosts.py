"""aws_hosts.py: an explicit AWS address yields to the service's endpoint variable, and only then."""

import subprocess
import sys

import boto3
import pytest

from sagemaker_emu import aws_hosts


def test_an_aws_address_yields_to_the_services_variable_only_when_one_is_set(monkeypatch):
    monkeypatch.delenv("AWS_ENDPOINT_URL_STS", raising=False)
    aws = "https://sts.us-east-1.amazonaws.com"
    assert aws_hosts.redirected("sts", aws) == aws  # outside the emulator's environment: untouched
    monkeypatch.setenv("AWS_ENDPOINT_URL_STS", "http://127.0.0.1:9")
    assert aws_hosts.redirected("sts", aws) == "http://127.0.0.1:9"
    assert aws_hosts.redirected("sts", "https://sts.cn-north-1.amazonaws.com.cn") == "http://127.0.0.1:9"
    assert aws_hosts.redirected("sts", "http://my-proxy.local:8000") == "http://my-proxy.local:8000"  # not AWS's
    assert aws_hosts.redirected("s3", "https://s3.amazonaws.com") == "https://s3.amazonaws.com"  # no S3 variable
    monkeypatch.setenv("AWS_ENDPOINT_URL_CLOUDWATCH_LOGS", "http://127.0.0.1:9")
    assert aws_hosts.redirected("logs", "https://logs.eu-west-1.amazonaws.com") == "http://127.0.0.1:9"


def test_installed_it_changes_clients_made_with_an_explicit_aws_address(monkeypatch):
    aws_hosts.install()
    monkeypatch.setenv("AWS_ENDPOINT_URL_STS", "http://127.0.0.1:9")
    sts = boto3.client("sts", region_name="us-east-1", endpoint_url="https://sts.us-east-1.amazonaws.com",
                       aws_access_key_id="k", aws_secret_access_key="s")
    assert sts.meta.endpoint_url == "http://127.0.0.1:9"
    monkeypatch.delenv("AWS_ENDPOINT_URL_STS")
    sts = boto3.client("sts", region_name="us-east-1", endpoint_url="https://sts.us-east-1.amazonaws.com",
                       aws_access_key_id="k", aws_secret_access_key="s")
    assert sts.meta.endpoint_url == "https://sts.us-east-1.amazonaws.com"


@pytest.mark.parametrize("other", [False, True])
def test_as_sitecustomize_it_patches_botocore_lazily_and_runs_the_sitecustomize_it_hides(tmp_path, other):
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(open(aws_hosts.__file__).read())
    path = [str(hook)]
    if other:  # a distribution's own sitecustomize, later on the path
        (tmp_path / "theirs").mkdir()
        (tmp_path / "theirs" / "sitecustomize.py").write_text("import os\nos.environ['THEIRS_RAN'] = '1'\n")
        path.append(str(tmp_path / "theirs"))
    code = ("import os, sys; print('botocore' in sys.modules); import boto3; "
            "print(boto3.client('sts', region_name='us-east-1', endpoint_url='https://sts.us-east-1.amazonaws.com')"
            ".meta.endpoint_url); print(os.environ.get('THEIRS_RAN'))")
    env = {"PYTHONPATH": ":".join(path), "AWS_ENDPOINT_URL_STS": "http://127.0.0.1:9", "PATH": "/usr/bin:/bin",
           "AWS_ACCESS_KEY_ID": "k", "AWS_SECRET_ACCESS_KEY": "s"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["False", "http://127.0.0.1:9", "1" if other else "None"]
