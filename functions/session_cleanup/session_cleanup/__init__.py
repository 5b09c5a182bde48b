"""Scheduled removal of expired and deleted sessions."""
