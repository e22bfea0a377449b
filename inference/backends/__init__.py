"""The backends room: the interface in ``base`` and one module per runtime library.

``base`` (``Backend``, ``MemoryEstimate``), ``registry`` (backend names -> lazily imported classes),
one module per library (``llama_cpp`` and its ``llama_*`` helpers, ``sentence_transformers``,
``diffusers``, ``faster_whisper``, ``piper``) and ``fake``, the deterministic backend tests use.
Runtime modules are imported only by ``inference.backends.registry``, on first use; nothing is
imported at package import.

May import: the shared types at the top of ``inference`` and ``inference.catalog``; never anything
HTTP (fastapi, starlette).
"""
