"""The appliance: an OpenAI-compatible local AI server with durable vector stores and a web UI.

Importing this package is cheap on purpose: no model runtime (torch, llama.cpp, diffusers, …) is
imported until a model of that kind loads. Build a server with `appliance.app.create_app`.
"""

__version__ = "0.1.0"
