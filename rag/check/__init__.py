"""Claim check: a claim judged against the archive (rag check)."""
