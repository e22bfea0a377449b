"""The catalog room: which models exist and what each one is.

``config`` (LocalAI's YAML ``ModelConfig``), ``catalog`` (configs and loose model files by name),
``discovery`` (what a model file or folder is), ``usecases`` (what a model is for),
``known_backends`` (backend names and aliases, as data), ``builtin_models``, ``paths`` (unsafe path
checks) and ``gguf`` (GGUF header reading).

May import: the shared types at the top of ``inference`` (errors, generation, media, capabilities).
Nothing is re-exported here; import from the modules.
"""
