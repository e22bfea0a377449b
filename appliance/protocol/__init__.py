"""Pydantic request and response models of the public API, one module per API family."""
