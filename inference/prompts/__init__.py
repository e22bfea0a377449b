"""The prompts room: turning messages into the text a model reads, and its output back into calls.

``templates`` (a config's chat/completion/edit templates), ``gotemplate`` (Go's text/template in
pure Python), ``sprig`` (the sprig functions LocalAI adds), ``template_data`` (what templates see)
and ``tools`` (tool and function calls in and out).

May import: the shared types at the top of ``inference`` and ``inference.catalog``.
"""
