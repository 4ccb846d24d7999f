"""The AWS services around an endpoint (S3, SNS, SQS, STS, IAM): moto's backends embedded in
this process by default, or a real endpoint per service; and the clients the emulator itself
uses to reach them (model data, async results, notifications)."""
