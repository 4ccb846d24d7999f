"""Control plane: models, endpoint configs, endpoints and the endpoint lifecycle."""
