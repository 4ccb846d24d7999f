"""CloudWatch on the one URL: the metric store the runtime's record step feeds (AWS/SageMaker
metrics from real invocations), PutMetricData, statistics, and alarms evaluated on a clock."""
