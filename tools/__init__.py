"""Developer tools run from the repository root (`python -m tools.<name>`, the Makefile's fuzz and load
targets) and the helpers they share with the tests and benchmarks: never shipped in a Lambda package."""
