"""Models from galleries and the Hugging Face hub: LocalAI's gallery contract, built safe.

`uris` parses the sources a model file may come from, `policy` decides which hosts may be reached,
`fetch` downloads (into a `partial` file) with resume, size cap and checksum, `hub` locates Hugging
Face files, `index` reads galleries, `install`
turns a gallery entry into files and a YAML config in the models path, `jobs` tracks progress, and
`service.ModelGallery` is the one object the app and the CLI use. Nothing here imports FastAPI.
"""
