"""Cited question answering over Arabic news articles, for English and Arabic questions."""

__version__ = "0.1.0"
