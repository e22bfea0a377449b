"""What a backend can do: the ``Capability`` values a backend declares and a request asks for.

A shared value type at the top of ``inference``: the catalog maps usecases to capabilities, backends
declare them, the scheduler checks them and the services ask for them, so none of those rooms needs
another just for this enum.
"""

from __future__ import annotations

from enum import StrEnum


class Capability(StrEnum):
    """What a backend can do; members compare equal to their string values."""

    CHAT = "chat"
    COMPLETE = "complete"
    EMBED = "embed"
    RERANK = "rerank"
    TOKENIZE = "tokenize"
    IMAGE = "image"
    TRANSCRIBE = "transcribe"
    SPEAK = "speak"
    SOUND = "sound"
