"""The conversation shared by the HTTP and streaming front doors: the error model and the turn engine."""
