"""What must not leak: field encryption, PII masking, log redaction and the text policy."""
