"""The inference library: model configs, the catalog, backends, the scheduler and text generation.

This package never imports ``appliance`` or FastAPI, and importing it imports no model runtime
(torch, llama_cpp, diffusers, ...): those load only when a model of their kind loads.
"""
