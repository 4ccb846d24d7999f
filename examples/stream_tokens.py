"""Stream tokens from a simulated LLM the way a chat client does.

Deploys `sagemaker-emu/llm-sim` with two instances behind LEAST_OUTSTANDING_REQUESTS and
prints each token as its event arrives. Run `make run` in another terminal, then:

    python examples/stream_tokens.py
"""

import json
import os
import sys
import time

import boto3

# `make run`'s server, unless AWS_ENDPOINT_URL (or what `sagemaker-emu env` exports) names another
os.environ.setdefault("AWS_ENDPOINT_URL", "http://127.0.0.1:8080")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")

sm = boto3.client("sagemaker")
runtime = boto3.client("sagemaker-runtime")

sm.create_model(ModelName="chat-model", PrimaryContainer={
    "Image": "sagemaker-emu/llm-sim",
    "Environment": {"LLM_SIM_DECODE_MS_PER_TOKEN": "15"},  # a fast GPU, so the demo is quick
})
sm.create_endpoint_config(EndpointConfigName="chat-config", ProductionVariants=[{
    "VariantName": "AllTraffic", "ModelName": "chat-model", "InstanceType": "ml.g5.2xlarge",
    "InitialInstanceCount": 2, "RoutingConfig": {"RoutingStrategy": "LEAST_OUTSTANDING_REQUESTS"},
}])
sm.create_endpoint(EndpointName="chat", EndpointConfigName="chat-config")
sm.get_waiter("endpoint_in_service").wait(EndpointName="chat")

request = {"inputs": "Write a short poem about routing.", "parameters": {"max_new_tokens": 40}, "stream": True}
started = time.perf_counter()
response = runtime.invoke_endpoint_with_response_stream(
    EndpointName="chat", Body=json.dumps(request), ContentType="application/json")
first_token_at = None
buffer = b""
for event in response["Body"]:
    buffer += event["PayloadPart"]["Bytes"]
    while b"\n\n" in buffer:  # TGI sends one `data:{json}` event per token
        line, buffer = buffer.split(b"\n\n", 1)
        token = json.loads(line[len(b"data:"):])
        if first_token_at is None:
            first_token_at = time.perf_counter() - started
        sys.stdout.write(token["token"]["text"])
        sys.stdout.flush()
total = time.perf_counter() - started
print(f"\n\nfirst token after {first_token_at * 1000:.0f} ms, whole answer after {total * 1000:.0f} ms, "
      f"served by {response['InvokedProductionVariant']}")

sm.delete_endpoint(EndpointName="chat")
sm.get_waiter("endpoint_deleted").wait(EndpointName="chat")
sm.delete_endpoint_config(EndpointConfigName="chat-config")
sm.delete_model(ModelName="chat-model")
