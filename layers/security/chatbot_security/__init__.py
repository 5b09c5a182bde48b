"""Shared security package: settings, tokens, validation, encryption, data access, observability."""
