"""Train a tiny model from train.csv, package it as model.tar.gz the way SageMaker expects
(model files at the top, code/inference.py beside them) and deploy it with any framework
image URI: sagemaker-emu runs the inference.py itself.

Run `make run` in another terminal, then `python examples/inference_script/deploy.py`.
"""

import csv
import json
import os
import tarfile
import tempfile
from pathlib import Path

import boto3

# `make run`'s server, unless AWS_ENDPOINT_URL (or what `sagemaker-emu env` exports) names another
os.environ.setdefault("AWS_ENDPOINT_URL", "http://127.0.0.1:8080")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
HERE = Path(__file__).resolve().parent


def fit(rows: list[list[float]], targets: list[float], steps: int = 20000, rate: float = 1e-5):
    """Least squares by gradient descent: small enough to read, no numpy needed."""
    weights, intercept = [0.0] * len(rows[0]), 0.0
    for _ in range(steps):
        errors = [intercept + sum(w * x for w, x in zip(weights, r)) - t for r, t in zip(rows, targets)]
        intercept -= rate * 100 * sum(errors) / len(rows)
        weights = [w - rate * sum(e * r[i] for e, r in zip(errors, rows)) / len(rows) for i, w in enumerate(weights)]
    return weights, intercept


with open(HERE / "train.csv") as f:
    data = [[float(v) for v in row] for row in list(csv.reader(f))[1:]]
weights, intercept = fit([r[:2] for r in data], [r[2] for r in data])

build = Path(tempfile.mkdtemp())
(build / "coefficients.json").write_text(json.dumps({"weights": weights, "intercept": intercept}))
archive = build / "model.tar.gz"
with tarfile.open(archive, "w:gz") as tar:
    tar.add(build / "coefficients.json", arcname="coefficients.json")
    tar.add(HERE / "code", arcname="code")

sm, runtime = boto3.client("sagemaker"), boto3.client("sagemaker-runtime")
sm.create_model(ModelName="house-prices", PrimaryContainer={
    "Image": "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3",
    "ModelDataUrl": archive.as_uri(),
})
sm.create_endpoint_config(EndpointConfigName="house-prices", ProductionVariants=[{
    "VariantName": "AllTraffic", "ModelName": "house-prices", "InstanceType": "ml.m5.large",
    "InitialInstanceCount": 1}])
sm.create_endpoint(EndpointName="house-prices", EndpointConfigName="house-prices")
sm.get_waiter("endpoint_in_service").wait(EndpointName="house-prices")

answer = runtime.invoke_endpoint(EndpointName="house-prices", ContentType="text/csv", Body=b"60,2\n100,4\n")
print("predicted prices (k):", json.loads(answer["Body"].read())["predictions"])

sm.delete_endpoint(EndpointName="house-prices")
sm.get_waiter("endpoint_deleted").wait(EndpointName="house-prices")
sm.delete_endpoint_config(EndpointConfigName="house-prices")
sm.delete_model(ModelName="house-prices")
