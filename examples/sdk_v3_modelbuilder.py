"""The SageMaker Python SDK v3 (`pip install sagemaker`, 3.x): ModelBuilder with AWS's TGI image,
build, deploy, invoke (TGI's API and the Messages API), then delete. Nothing but
AWS_ENDPOINT_URL points it at the emulator; against AWS only the role would change.

Needs the v3 SDK, which cannot share an environment with v2 (`make test` builds `.venv-sdk3`):
    AWS_ENDPOINT_URL=http://127.0.0.1:8080 .venv-sdk3/bin/python examples/sdk_v3_modelbuilder.py

`default_bucket` is given because Session.default_bucket() otherwise asks STS at a fixed AWS
address (https://sts.<region>.amazonaws.com) for the account, whatever AWS_ENDPOINT_URL says.
"""

import json
import os
import time

os.environ.setdefault("AWS_ENDPOINT_URL", "http://127.0.0.1:8080")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")

from sagemaker.core.helper.session_helper import Session  # noqa: E402
from sagemaker.serve.builder.schema_builder import SchemaBuilder  # noqa: E402
from sagemaker.serve.model_builder import ModelBuilder  # noqa: E402
from sagemaker.serve.utils.types import ModelServer  # noqa: E402

ROLE = "arn:aws:iam::123456789012:role/SageMakerExecutionRole"
TGI = ("763104351884.dkr.ecr.us-east-1.amazonaws.com/"
       "huggingface-pytorch-tgi-inference:2.4.0-tgi2.3.1-gpu-py311-cu124-ubuntu22.04")

started = time.time()
builder = ModelBuilder(
    sagemaker_session=Session(default_bucket="sagemaker-us-east-1-123456789012"),
    image_uri=TGI, model_server=ModelServer.TGI, role_arn=ROLE, instance_type="ml.g5.2xlarge",
    env_vars={"HF_MODEL_ID": "meta-llama/Llama-3.1-8B-Instruct"},
    schema_builder=SchemaBuilder({"inputs": "Hi", "parameters": {"max_new_tokens": 4}}, [{"generated_text": "Hello"}]))
builder.build()
endpoint = builder.deploy(endpoint_name=f"v3-tgi-{int(started)}", initial_instance_count=1, wait=True)
print(f"deployed {endpoint.endpoint_name} in {time.time() - started:.0f} s: {endpoint.endpoint_status}")

answer = endpoint.invoke(body=json.dumps({"inputs": "Hello", "parameters": {"max_new_tokens": 4}}),
                         content_type="application/json")
print("TGI:", json.loads(answer.body.read())[0]["generated_text"])
answer = endpoint.invoke(body=json.dumps({"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 3}),
                         content_type="application/json")
print("Messages API:", json.loads(answer.body.read())["choices"][0]["message"]["content"])
endpoint.delete()
print("deleted")
