"""Documents and answers: extraction, chunking, ingest jobs and retrieval over the document library and the models."""
