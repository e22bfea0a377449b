"""Model backends: the interface in ``base`` and one module per runtime library.

Modules here are imported lazily by ``inference.registry``; nothing is imported at package import.
"""
