"""HTTP bodies that are not JSON: multipart uploads in, encoded audio out.

``uploads`` (multipart bodies spooled to a private folder, removed however the request ends) and
``audio_encoding`` (the audio response formats and their encoders).

May import: ``appliance.errors``, ``inference``'s shared types (``inference.media``) and
FastAPI/starlette; not routes, services or ``appliance.app``. Nothing is re-exported here.
"""
