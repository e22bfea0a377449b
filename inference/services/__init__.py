"""The services room: what each capability offers the HTTP layer, on top of the scheduler.

``textgen`` (chat, completions, edits), ``embeddings`` and ``batching`` (the micro-batcher),
``images`` and ``generated_files``, ``sound``, ``speech``, ``transcription``, and ``metrics``.
A service is handed its scheduler; it leases a model per request.

May import: the shared types at the top of ``inference``, ``inference.catalog``,
``inference.prompts``, ``inference.backends`` and ``inference.scheduling``.
"""
