"""Deploy a model exactly as a production script does, against sagemaker-emu.

Run `make run` in another terminal, then:

    python examples/deploy.py
"""

import os

import boto3

# `make run`'s server, unless AWS_ENDPOINT_URL (or what `sagemaker-emu env` exports) names another
os.environ.setdefault("AWS_ENDPOINT_URL", "http://127.0.0.1:8080")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")  # any value: the emulator does not check signatures
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")

sm = boto3.client("sagemaker")
sm.create_model(ModelName="demo-model", PrimaryContainer={"Image": "sagemaker-emu/echo"})
sm.create_endpoint_config(
    EndpointConfigName="demo-config",
    ProductionVariants=[{
        "VariantName": "AllTraffic", "ModelName": "demo-model", "InstanceType": "ml.g5.2xlarge",
        "InitialInstanceCount": 2, "RoutingConfig": {"RoutingStrategy": "LEAST_OUTSTANDING_REQUESTS"},
    }],
)
sm.create_endpoint(EndpointName="demo", EndpointConfigName="demo-config")
sm.get_waiter("endpoint_in_service").wait(EndpointName="demo")
print(sm.describe_endpoint(EndpointName="demo")["EndpointStatus"])

rt = boto3.client("sagemaker-runtime")
answer = rt.invoke_endpoint(EndpointName="demo", Body=b'{"hello": "world"}', ContentType="application/json")
print(answer["Body"].read().decode(), "from", answer["InvokedProductionVariant"])

sm.delete_endpoint(EndpointName="demo")
sm.get_waiter("endpoint_deleted").wait(EndpointName="demo")
sm.delete_endpoint_config(EndpointConfigName="demo-config")
sm.delete_model(ModelName="demo-model")
