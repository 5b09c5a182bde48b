"""Data access: session and message records, the DynamoDB store and the rate counters.

Raises storage exceptions only; the conversation maps them to HTTP answers.
"""
