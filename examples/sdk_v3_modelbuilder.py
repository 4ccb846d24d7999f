"""The SageMaker Python SDK v3 (`pip install sagemaker`, 3.x): ModelBuilder with AWS's TGI image,
build, deploy, invoke (TGI's API and the Messages API), then delete. This is the script as it
would run against AWS (only the role would change); the variables that `sagemaker-emu env`
prints point it at the emulator.

Needs the v3 SDK, which cannot share an environment with v2 (`make test` builds `.venv-sdk3`):
    eval "$(.venv/bin/sagemaker-emu env)" && .venv-sdk3/bin/python examples/sdk_v3_modelbuilder.py

Besides the endpoint URL, `sagemaker-emu env` names an SDK config file whose DefaultS3Bucket
spares the SDK its one call to a fixed AWS address (STS, for the account in the bucket's name).
"""

import json
import time

from sagemaker.core.helper.session_helper import Session
from sagemaker.serve.builder.schema_builder import SchemaBuilder
from sagemaker.serve.model_builder import ModelBuilder
from sagemaker.serve.utils.types import ModelServer

ROLE = "arn:aws:iam::123456789012:role/SageMakerExecutionRole"
TGI = ("763104351884.dkr.ecr.us-east-1.amazonaws.com/"
       "huggingface-pytorch-tgi-inference:2.4.0-tgi2.3.1-gpu-py311-cu124-ubuntu22.04")

started = time.time()
builder = ModelBuilder(
    sagemaker_session=Session(),
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
