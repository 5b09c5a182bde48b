"""Lambda REQUEST authorizer (payload 2.0, simple responses)."""
