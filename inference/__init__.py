"""The inference library: everything that runs models, in a few named rooms.

- the shared value types at the top: ``errors`` (the error tree), ``generation`` (prompts, sampling,
  generation events), ``media`` (image and audio requests and results), ``capabilities``
  (``Capability``); they import nothing else from ``inference``;
- ``catalog``: model configs, the catalog of models, file detection, usecases, backend names;
- ``prompts``: chat and completion templates (LocalAI's Go templates, sprig) and tool calls;
- ``backends``: the backend interface, one module per runtime library, the backend registry;
- ``scheduling``: the scheduler, model lifecycle, leases, memory probes and placement;
- ``services``: what each capability exposes to the HTTP layer (text, embeddings, images, ...).

Imports point one way: shared types <- ``catalog`` <- ``prompts`` and ``backends`` <- ``scheduling``
<- ``services`` (which may also use ``prompts``); each room's ``__init__`` names what it may import,
and ``tests/unit/test_import_graph.py`` holds it to that. This package never imports ``appliance``,
``stores`` or FastAPI, and importing it imports no model runtime (torch, llama_cpp, diffusers, ...):
those load only when a model of their kind loads.
"""
