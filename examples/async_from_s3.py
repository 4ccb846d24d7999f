"""One URL for everything a deployment script touches: upload a model to S3, deploy it with
AWS's PyTorch image, call it asynchronously, and read the answer from S3 and the notification
from SQS. Only AWS_ENDPOINT_URL points boto3 at the emulator; against AWS, only the role, the
bucket and the account would change.

Run `make run` in another terminal, then `python examples/async_from_s3.py`.
"""

import io
import json
import os
import tarfile
import uuid

import boto3

os.environ.setdefault("AWS_ENDPOINT_URL", "http://127.0.0.1:8080")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")

ROLE = "arn:aws:iam::123456789012:role/SageMakerExecutionRole"
IMAGE = "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-inference:2.1-cpu-py310"
INFERENCE_PY = b'''
import json, os

def model_fn(model_dir):
    with open(os.path.join(model_dir, "weights.json")) as f:
        return json.load(f)

def predict_fn(data, model):
    return {"predictions": [model["slope"] * x + model["intercept"] for x in data["instances"]]}
'''
s3, sns, sqs = boto3.client("s3"), boto3.client("sns"), boto3.client("sqs")
sm, runtime = boto3.client("sagemaker"), boto3.client("sagemaker-runtime")
run = uuid.uuid4().hex[:8]
bucket, name = f"example-{run}", f"async-{run}"

# 1. The model archive, as a training job would leave it, uploaded to S3.
archive = io.BytesIO()
with tarfile.open(fileobj=archive, mode="w:gz") as tar:
    for member, data in (("weights.json", b'{"slope": 2, "intercept": 1}'), ("code/inference.py", INFERENCE_PY)):
        info = tarfile.TarInfo(member)
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
s3.create_bucket(Bucket=bucket)
s3.put_object(Bucket=bucket, Key="model/model.tar.gz", Body=archive.getvalue())

# 2. Where notifications go: a topic feeding a queue.
topic = sns.create_topic(Name=f"{name}-done")["TopicArn"]
queue = sqs.create_queue(QueueName=f"{name}-done")["QueueUrl"]
queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)

# 3. An asynchronous endpoint running AWS's PyTorch image on that model.
sm.create_model(ModelName=name, ExecutionRoleArn=ROLE, PrimaryContainer={
    "Image": IMAGE, "ModelDataUrl": f"s3://{bucket}/model/model.tar.gz"})
sm.create_endpoint_config(EndpointConfigName=name, ProductionVariants=[{
    "VariantName": "AllTraffic", "ModelName": name, "InstanceType": "ml.m5.large", "InitialInstanceCount": 1}],
    AsyncInferenceConfig={"OutputConfig": {"S3OutputPath": f"s3://{bucket}/output",
                                           "NotificationConfig": {"SuccessTopic": topic}}})
sm.create_endpoint(EndpointName=name, EndpointConfigName=name)
sm.get_waiter("endpoint_in_service").wait(EndpointName=name)

# 4. The request waits in S3; the call returns at once with where the answer will be.
s3.put_object(Bucket=bucket, Key="input/1.json", Body=json.dumps({"instances": [1, 2, 3]}))
accepted = runtime.invoke_endpoint_async(EndpointName=name, InputLocation=f"s3://{bucket}/input/1.json",
                                         ContentType="application/json")
print("accepted; the answer will be at", accepted["OutputLocation"])

# 5. The notification says it is done; the answer is in S3.
while True:
    messages = sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=5).get("Messages", [])
    if messages:
        break
event = json.loads(json.loads(messages[0]["Body"])["Message"])
print("notified:", event["invocationStatus"], event["inferenceId"] == accepted["InferenceId"])
output_bucket, _, key = event["responseParameters"]["outputLocation"][len("s3://"):].partition("/")
print("answer:", s3.get_object(Bucket=output_bucket, Key=key)["Body"].read().decode())

sm.delete_endpoint(EndpointName=name)
sm.delete_endpoint_config(EndpointConfigName=name)
sm.delete_model(ModelName=name)
