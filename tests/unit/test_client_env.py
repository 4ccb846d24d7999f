"""client_env.py: one variable per service the server answers, named as botocore reads it."""

import botocore.session

from sagemaker_emu import client_env
from sagemaker_emu.neighbours.embedded import SERVICES


def test_every_client_it_names_is_served_and_every_served_service_is_named():
    session = botocore.session.get_session()
    signing = {session.get_service_model(c).signing_name for c in client_env.CLIENTS}
    # app.build: SageMaker and its runtime, CloudWatch ("monitoring"), Logs, Application Auto
    # Scaling, and the embedded neighbours
    assert signing == {"sagemaker", "monitoring", "logs", "application-autoscaling", *SERVICES}


def test_variable_names_are_botocores_and_there_is_no_catch_all():
    names = client_env.endpoint_variables("http://127.0.0.1:1")
    assert {"AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME", "AWS_ENDPOINT_URL_CLOUDWATCH_LOGS",
            "AWS_ENDPOINT_URL_APPLICATION_AUTO_SCALING", "AWS_ENDPOINT_URL_STS"} <= set(names)
    assert "AWS_ENDPOINT_URL" not in names  # moto keeps DynamoDB and the rest
    assert client_env.endpoint_variables("http://e", {"s3": "http://minio"})["AWS_ENDPOINT_URL_S3"] == "http://minio"


def test_the_sitecustomize_directory_must_be_this_users_alone(tmp_path):
    """Code on PYTHONPATH runs in every interpreter: a directory others may write is not used."""
    cache = tmp_path / "cache"
    env = client_env.python_path(cache)
    assert env["PYTHONPATH"].split(":")[0] == str(cache / "python")
    assert (cache / "python" / "sitecustomize.py").read_text().startswith('"""Clients that build a fixed AWS address')
    cache.chmod(0o777)  # as a shared temporary directory made by someone else would be
    assert client_env.python_path(cache) == {}
