"""A house-price model in the SageMaker framework-container convention.

`model_fn` loads the coefficients that deploy.py fitted from train.csv; `predict_fn` applies
them. No third-party libraries: the point is the convention, not the model.
"""

import json
import os


def model_fn(model_dir):
    with open(os.path.join(model_dir, "coefficients.json")) as f:
        return json.load(f)


def input_fn(body, content_type):
    if content_type == "text/csv":
        return [[float(v) for v in line.split(",")] for line in body.decode().strip().splitlines()]
    if content_type == "application/json":
        return json.loads(body)["instances"]
    raise ValueError(f"unsupported content type {content_type}")


def predict_fn(rows, model):
    return [model["intercept"] + sum(w * x for w, x in zip(model["weights"], row)) for row in rows]


def output_fn(predictions, accept):
    return json.dumps({"predictions": [round(p, 1) for p in predictions]}), "application/json"
