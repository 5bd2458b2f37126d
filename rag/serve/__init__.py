"""`rag serve`: the HTTP API (FastAPI on uvicorn) over the same answer pipeline as the page and the CLI."""
