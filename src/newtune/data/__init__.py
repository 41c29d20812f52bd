"""Data: sources → formats → segments → token ids and labels → cache. Never imports torch."""
