"""What every function runs on: settings, observability, AWS clients, secrets, retry classification and audit events."""
