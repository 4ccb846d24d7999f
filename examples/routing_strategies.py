"""The same load through RANDOM and LEAST_OUTSTANDING_REQUESTS, with latency percentiles.

Eight users talk to four `serial` llm-sim instances (one request at a time each) whose answer
lengths vary a lot, like a code model's. Run `make run` in another terminal, then
`python examples/routing_strategies.py` (about 15 seconds).
"""

import json
import os
import random
import threading
import time

import boto3
from botocore.config import Config

# `make run`'s server, unless AWS_ENDPOINT_URL (or what `sagemaker-emu env` exports) names another
os.environ.setdefault("AWS_ENDPOINT_URL", "http://127.0.0.1:8080")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")

USERS, INSTANCES, SECONDS = 8, 4, 5.0
sm = boto3.client("sagemaker")
runtime = boto3.client("sagemaker-runtime", config=Config(max_pool_connections=USERS))
sm.create_model(ModelName="coder", PrimaryContainer={"Image": "sagemaker-emu/llm-sim", "Environment": {
    "LLM_SIM_PROFILE": "serial", "LLM_SIM_TIME_SCALE": "0.05"}})


def run(strategy: str) -> list[float]:
    name = f"coder-{strategy.lower().replace('_', '-')}"
    sm.create_endpoint_config(EndpointConfigName=name, ProductionVariants=[{
        "VariantName": "AllTraffic", "ModelName": "coder", "InstanceType": "ml.g5.2xlarge",
        "InitialInstanceCount": INSTANCES, "RoutingConfig": {"RoutingStrategy": strategy}}])
    sm.create_endpoint(EndpointName=name, EndpointConfigName=name)
    sm.get_waiter("endpoint_in_service").wait(EndpointName=name)
    latencies, deadline = [], time.perf_counter() + SECONDS

    def user(n: int) -> None:
        rng = random.Random(n)  # the same requests for both strategies
        while time.perf_counter() < deadline:
            tokens = max(1, min(2048, round(120 * rng.lognormvariate(0, 0.8))))
            body = json.dumps({"inputs": "Write a function that parses a date.",
                               "parameters": {"max_new_tokens": tokens}})
            t0 = time.perf_counter()
            runtime.invoke_endpoint(EndpointName=name, Body=body, ContentType="application/json")["Body"].read()
            latencies.append(time.perf_counter() - t0)

    threads = [threading.Thread(target=user, args=(n,)) for n in range(USERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    sm.delete_endpoint(EndpointName=name)
    sm.get_waiter("endpoint_deleted").wait(EndpointName=name)
    sm.delete_endpoint_config(EndpointConfigName=name)
    return sorted(latencies)


def pct(values: list[float], q: float) -> float:
    return values[min(len(values) - 1, int(q / 100 * len(values)))]


results = {s: run(s) for s in ("RANDOM", "LEAST_OUTSTANDING_REQUESTS")}
print(f"{'strategy':<28}{'requests':>9}{'p50 ms':>9}{'p90 ms':>9}{'p99 ms':>9}")
for strategy, lat in results.items():
    print(f"{strategy:<28}{len(lat):>9}{pct(lat, 50) * 1000:>9.0f}{pct(lat, 90) * 1000:>9.0f}{pct(lat, 99) * 1000:>9.0f}")
sm.delete_model(ModelName="coder")
