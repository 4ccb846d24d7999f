"""The inference-component workshop flow: an endpoint without a model, two components on it,
invocations by component, copies scaled up and down, then everything deleted.

Run `make run` in another terminal, then `python examples/inference_components.py`. Against
AWS, only the image URIs and the role would change.
"""

import json
import os
import time

import boto3

# `make run`'s server, unless AWS_ENDPOINT_URL (or what `sagemaker-emu env` exports) names another
os.environ.setdefault("AWS_ENDPOINT_URL", "http://127.0.0.1:8080")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")

ROLE = "arn:aws:iam::123456789012:role/SageMakerExecutionRole"
sm, runtime = boto3.client("sagemaker"), boto3.client("sagemaker-runtime")


def wait_for(name: str) -> dict:
    """SageMaker has no waiter for inference components: poll, as the workshop notebooks do."""
    while True:
        described = sm.describe_inference_component(InferenceComponentName=name)
        if described["InferenceComponentStatus"] not in ("Creating", "Updating", "Deleting"):
            return described
        time.sleep(0.2)


# 1. An endpoint config with no ModelName: one ml.g5.12xlarge (4 GPUs) to place copies on.
sm.create_endpoint_config(EndpointConfigName="ic-demo", ExecutionRoleArn=ROLE, ProductionVariants=[{
    "VariantName": "AllTraffic", "InstanceType": "ml.g5.12xlarge", "InitialInstanceCount": 1,
    "RoutingConfig": {"RoutingStrategy": "LEAST_OUTSTANDING_REQUESTS"},
    "ManagedInstanceScaling": {"Status": "ENABLED", "MinInstanceCount": 1, "MaxInstanceCount": 2}}])
sm.create_endpoint(EndpointName="ic-demo", EndpointConfigName="ic-demo")
sm.get_waiter("endpoint_in_service").wait(EndpointName="ic-demo", WaiterConfig={"Delay": 1})

# 2. Two models, each an inference component with its own compute requirements.
sm.create_model(ModelName="chat-model", ExecutionRoleArn=ROLE, PrimaryContainer={"Image": "sagemaker-emu/llm-sim"})
sm.create_model(ModelName="echo-model", ExecutionRoleArn=ROLE, PrimaryContainer={"Image": "sagemaker-emu/echo"})
for name, model, gpus, copies in (("chat", "chat-model", 2, 1), ("echo", "echo-model", 1, 2)):
    sm.create_inference_component(
        InferenceComponentName=name, EndpointName="ic-demo", VariantName="AllTraffic",
        Specification={"ModelName": model, "ComputeResourceRequirements": {
            "NumberOfAcceleratorDevicesRequired": gpus, "MinMemoryRequiredInMb": 1024}},
        RuntimeConfig={"CopyCount": copies})
for name in ("chat", "echo"):
    described = wait_for(name)
    print(f"{name}: {described['InferenceComponentStatus']}, "
          f"{described['RuntimeConfig']['CurrentCopyCount']} copies")

# 3. Invoke each component by name.
answer = runtime.invoke_endpoint(EndpointName="ic-demo", InferenceComponentName="chat",
                                 ContentType="application/json",
                                 Body=json.dumps({"inputs": "Hello", "parameters": {"max_new_tokens": 5}}))
print("chat answered:", json.loads(answer["Body"].read())[0]["generated_text"] != "")
answer = runtime.invoke_endpoint(EndpointName="ic-demo", InferenceComponentName="echo", Body=b"ping")
print("echo answered:", answer["Body"].read().decode())

# 4. Scale echo to 4 copies: the first instance is full, so managed scaling adds the second.
sm.update_inference_component_runtime_config(InferenceComponentName="echo", DesiredRuntimeConfig={"CopyCount": 4})
print("echo copies:", wait_for("echo")["RuntimeConfig"]["CurrentCopyCount"],
      "on", sm.describe_endpoint(EndpointName="ic-demo")["ProductionVariants"][0]["CurrentInstanceCount"], "instances")
sm.update_inference_component_runtime_config(InferenceComponentName="echo", DesiredRuntimeConfig={"CopyCount": 1})
print("echo copies:", wait_for("echo")["RuntimeConfig"]["CurrentCopyCount"],
      "on", sm.describe_endpoint(EndpointName="ic-demo")["ProductionVariants"][0]["CurrentInstanceCount"], "instances")

# 5. Components first, then the endpoint.
for name in ("chat", "echo"):
    sm.delete_inference_component(InferenceComponentName=name)
while sm.list_inference_components(EndpointNameEquals="ic-demo")["InferenceComponents"]:
    time.sleep(0.2)
sm.delete_endpoint(EndpointName="ic-demo")
sm.get_waiter("endpoint_deleted").wait(EndpointName="ic-demo", WaiterConfig={"Delay": 1})
print("deleted")
