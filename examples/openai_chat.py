"""Call an endpoint and an inference component through SageMaker's OpenAI-compatible path,
with the OpenAI SDK (and LangChain's ChatOpenAI, when langchain-openai is installed).

Deploys `sagemaker-emu/llm-sim` as an endpoint and as an inference component, then asks each
a question whole and streamed. The API key is a SageMaker bearer token, made as the SageMaker
SDK v3's `generate_token` makes one. Run `make run` in another terminal, then:

    python examples/openai_chat.py

(`eval "$(sagemaker-emu env --openai chat)"` exports OPENAI_BASE_URL and OPENAI_API_KEY for
an endpoint named chat, for other OpenAI clients.)
"""

import os
import time

import boto3
from openai import OpenAI

from sagemaker_emu.client_env import bearer_token

# `make run`'s server, unless AWS_ENDPOINT_URL (or what `sagemaker-emu env` exports) names another
url = os.environ.setdefault("AWS_ENDPOINT_URL", "http://127.0.0.1:8080")
region = os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
ROLE = "arn:aws:iam::123456789012:role/SageMakerRole"
FAST = {"LLM_SIM_DECODE_MS_PER_TOKEN": "5"}  # a fast GPU, so the demo is quick

sm = boto3.client("sagemaker")
sm.create_model(ModelName="chat-model", PrimaryContainer={"Image": "sagemaker-emu/llm-sim", "Environment": FAST},
                ExecutionRoleArn=ROLE)
sm.create_endpoint_config(EndpointConfigName="chat-config", ProductionVariants=[{
    "VariantName": "AllTraffic", "ModelName": "chat-model", "InstanceType": "ml.g5.2xlarge", "InitialInstanceCount": 1}])
sm.create_endpoint(EndpointName="chat", EndpointConfigName="chat-config")
sm.create_endpoint_config(EndpointConfigName="chat-ics-config", ExecutionRoleArn=ROLE, ProductionVariants=[{
    "VariantName": "AllTraffic", "InstanceType": "ml.g5.12xlarge", "InitialInstanceCount": 1}])
sm.create_endpoint(EndpointName="chat-ics", EndpointConfigName="chat-ics-config")
for name in ("chat", "chat-ics"):
    sm.get_waiter("endpoint_in_service").wait(EndpointName=name)
sm.create_inference_component(
    InferenceComponentName="assistant", EndpointName="chat-ics", VariantName="AllTraffic",
    Specification={"ModelName": "chat-model", "ComputeResourceRequirements": {
        "NumberOfAcceleratorDevicesRequired": 1, "MinMemoryRequiredInMb": 1024}},
    RuntimeConfig={"CopyCount": 1})
while sm.describe_inference_component(InferenceComponentName="assistant")["InferenceComponentStatus"] != "InService":
    time.sleep(0.5)  # botocore has no waiter for inference components

token = bearer_token(os.environ["AWS_ACCESS_KEY_ID"], os.environ["AWS_SECRET_ACCESS_KEY"], region)
question = [{"role": "user", "content": "What does a router do?"}]
for where, path in (("endpoint", "/endpoints/chat"), ("component", "/endpoints/chat-ics/inference-components/assistant")):
    chat = OpenAI(base_url=f"{url}{path}/openai/v1", api_key=token)
    whole = chat.chat.completions.create(model="", messages=question, max_tokens=8)
    print(f"{where}, whole: {whole.choices[0].message.content!r} ({whole.usage.completion_tokens} tokens)")
    streamed = chat.chat.completions.create(model="", messages=question, max_tokens=8, stream=True)
    print(f"{where}, streamed: {''.join(c.choices[0].delta.content or '' for c in streamed)!r}")

try:
    from langchain_openai import ChatOpenAI
except ImportError:
    print("LangChain: pip install langchain-openai to run ChatOpenAI against the same path")
else:
    llm = ChatOpenAI(base_url=f"{url}/endpoints/chat/openai/v1", api_key=token, model="", max_tokens=8)
    print(f"LangChain: {llm.invoke('What does a router do?').content!r}")
