"""Application Auto Scaling on the one URL, for SageMaker's three scalable dimensions: targets,
target-tracking and step policies (their CloudWatch alarms included), scheduled actions, and
activities; it scales through the same operations a user would call."""
