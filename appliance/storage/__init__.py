"""The app's side of the vector stores: opening them, and moving backups over HTTP.

``access`` (``StoreAccess``: one registry per data path, opened on first use) and ``transfer``
(store snapshots streamed out as downloads, uploads fed to the importer).

May import: ``appliance.errors``, ``stores`` and FastAPI/starlette; not routes, services or
``appliance.app``. Nothing is re-exported here.
"""
