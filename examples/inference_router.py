"""One model in two Regions behind an inference router: the router prefers its own Region and
moves to the other when the local endpoint goes.

Deploys the echo image as `model-east` (us-east-1) and `model-west` (us-west-2), puts both
behind router `global-echo` in us-east-1, invokes it, deletes the local endpoint, and invokes it
again. Run `make run` in another terminal, then:

    python examples/inference_router.py
"""

import os
import time

import boto3

os.environ.setdefault("AWS_ENDPOINT_URL", "http://127.0.0.1:8080")  # `make run`'s server by default
os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")

arns = []
for region in ("us-east-1", "us-west-2"):
    sm = boto3.client("sagemaker", region_name=region)
    name = f"model-{region.split('-')[1]}"
    sm.create_model(ModelName=name, PrimaryContainer={"Image": "sagemaker-emu/echo"})
    sm.create_endpoint_config(EndpointConfigName=name, ProductionVariants=[{
        "VariantName": "AllTraffic", "ModelName": name, "InstanceType": "ml.m5.large", "InitialInstanceCount": 1}])
    sm.create_endpoint(EndpointName=name, EndpointConfigName=name)
    sm.get_waiter("endpoint_in_service").wait(EndpointName=name)
    arns.append(sm.describe_endpoint(EndpointName=name)["EndpointArn"])

sm = boto3.client("sagemaker", region_name="us-east-1")
sm.create_inference_router(InferenceRouterName="global-echo", RoutingTargets=[
    {"Name": "echo", "Destinations": [{"ResourceArn": arn} for arn in arns]}])
while sm.describe_inference_router(InferenceRouterName="global-echo")["Status"] != "InService":
    time.sleep(0.2)  # botocore has no waiter for inference routers

router = boto3.client("sagemaker-inference-router-runtime", region_name="us-east-1")


def invoke() -> None:
    answer = router.invoke_inference_router(InferenceRouterName="global-echo", RoutingTargetName="echo",
                                            Body=b'{"hello": "router"}', ContentType="application/json")
    print(f"{answer['Body'].read().decode()} from {answer['InvokedRoutedResourceArn'].split(':')[3]} "
          f"({answer['RoutingReason']})")


invoke()
sm.delete_endpoint(EndpointName="model-east")
while any(d["RoutingStatus"] == "Routable" and d["ResourceArn"] == arns[0] for d in sm.describe_inference_router(
        InferenceRouterName="global-echo")["RoutingTargets"][0]["Destinations"]):
    time.sleep(0.2)
invoke()
