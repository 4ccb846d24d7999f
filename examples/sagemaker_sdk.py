"""The SageMaker Python SDK (v2) against sagemaker-emu: Model.deploy, a waiter, Predictor.

Needs `pip install 'sagemaker<3'` (the `sdk` extra). Run `make run` in another terminal, then
`python examples/sagemaker_sdk.py`. The SDK builds its own boto3 clients, so the endpoint
variables below are all it takes.
"""

import os

# `make run`'s server, unless AWS_ENDPOINT_URL (or what `sagemaker-emu env` exports) names another
os.environ.setdefault("AWS_ENDPOINT_URL", "http://127.0.0.1:8080")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
os.environ.setdefault("SAGEMAKER_SUPPRESS_V2_WARNING", "1")

import sagemaker  # noqa: E402
from sagemaker.deserializers import JSONDeserializer  # noqa: E402
from sagemaker.model import Model  # noqa: E402
from sagemaker.predictor import Predictor  # noqa: E402
from sagemaker.serializers import JSONSerializer  # noqa: E402

session = sagemaker.Session()
model = Model(image_uri="sagemaker-emu/llm-sim", role="arn:aws:iam::123456789012:role/SageMakerRole",
              env={"LLM_SIM_DECODE_MS_PER_TOKEN": "5"}, sagemaker_session=session, name="sdk-llm")
# deploy(wait=True) would sleep the SDK's 30-s poll interval before its first look;
# wait=False plus boto3's waiter returns as soon as the endpoint is InService.
model.deploy(initial_instance_count=1, instance_type="ml.g5.xlarge", endpoint_name="sdk-llm", wait=False)
session.sagemaker_client.get_waiter("endpoint_in_service").wait(EndpointName="sdk-llm")

predictor = Predictor("sdk-llm", sagemaker_session=session, serializer=JSONSerializer(),
                      deserializer=JSONDeserializer())
answer = predictor.predict({"inputs": "Hello from the SDK", "parameters": {"max_new_tokens": 8}})
print(len(answer[0]["generated_text"].split()), "tokens:", answer[0]["generated_text"])

predictor.delete_endpoint()
model.delete_model()
