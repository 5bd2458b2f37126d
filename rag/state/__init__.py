"""What the product keeps between runs besides the index: conversations and API keys, in one SQLite database in
the state folder (RAG_STATE_DIR)."""
