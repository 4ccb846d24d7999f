"""SageMaker Runtime: invoke an endpoint (variant choice, routing, the call to an instance)."""
