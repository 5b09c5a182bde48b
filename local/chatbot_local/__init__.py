"""Run the chatbot API on a laptop: real handlers, API Gateway emulation, moto for AWS."""
