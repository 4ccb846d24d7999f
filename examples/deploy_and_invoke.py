"""Two production variants with weights, then TargetVariant, as a canary rollout does.

Run `make run` in another terminal, then `python examples/deploy_and_invoke.py`.
"""

import collections
import os

import boto3

# `make run`'s server, unless AWS_ENDPOINT_URL (or what `sagemaker-emu env` exports) names another
os.environ.setdefault("AWS_ENDPOINT_URL", "http://127.0.0.1:8080")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")

sm, runtime = boto3.client("sagemaker"), boto3.client("sagemaker-runtime")
sm.create_model(ModelName="stable", PrimaryContainer={"Image": "sagemaker-emu/echo"})
sm.create_model(ModelName="canary", PrimaryContainer={"Image": "sagemaker-emu/echo"})
sm.create_endpoint_config(EndpointConfigName="rollout", ProductionVariants=[
    {"VariantName": "Stable", "ModelName": "stable", "InstanceType": "ml.m5.large",
     "InitialInstanceCount": 2, "InitialVariantWeight": 9.0},
    {"VariantName": "Canary", "ModelName": "canary", "InstanceType": "ml.m5.large",
     "InitialInstanceCount": 1, "InitialVariantWeight": 1.0},
])
sm.create_endpoint(EndpointName="rollout", EndpointConfigName="rollout")
sm.get_waiter("endpoint_in_service").wait(EndpointName="rollout")

served = collections.Counter(
    runtime.invoke_endpoint(EndpointName="rollout", Body=b"{}", ContentType="application/json")
    ["InvokedProductionVariant"] for _ in range(200))
print(f"by weight (9:1): Stable {served['Stable']}, Canary {served['Canary']}")

pinned = runtime.invoke_endpoint(EndpointName="rollout", Body=b"{}", TargetVariant="Canary")
print("TargetVariant=Canary was served by", pinned["InvokedProductionVariant"])

sm.update_endpoint_weights_and_capacities(EndpointName="rollout", DesiredWeightsAndCapacities=[
    {"VariantName": "Stable", "DesiredWeight": 0.0}, {"VariantName": "Canary", "DesiredWeight": 1.0}])
sm.get_waiter("endpoint_in_service").wait(EndpointName="rollout")
after = {runtime.invoke_endpoint(EndpointName="rollout", Body=b"{}")["InvokedProductionVariant"] for _ in range(20)}
print("after promoting the canary:", ", ".join(sorted(after)))

sm.delete_endpoint(EndpointName="rollout")
sm.get_waiter("endpoint_deleted").wait(EndpointName="rollout")
sm.delete_endpoint_config(EndpointConfigName="rollout")
for model in ("stable", "canary"):
    sm.delete_model(ModelName=model)
