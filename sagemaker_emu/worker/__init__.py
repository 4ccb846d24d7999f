"""One instance of a production variant: a process speaking SageMaker's container contract.

`python -m sagemaker_emu.worker` serves `GET /ping` and `POST /invocations` on the port in
`SAGEMAKER_BIND_TO_PORT` over one of the model kinds in `models.py`.
"""
