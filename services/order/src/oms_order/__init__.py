"""Order service: the public order gateway and the orchestrator of the order saga."""
