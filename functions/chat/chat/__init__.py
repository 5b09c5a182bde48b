"""Chat API function: every /v1 route."""
