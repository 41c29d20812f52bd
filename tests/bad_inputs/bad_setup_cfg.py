"""Setups of the cli/config/env/paths/models corpus cases that plain text files cannot express."""

from __future__ import annotations

from pathlib import Path


def latin1_config(case_dir: Path, fixtures: dict) -> None:
    """A config saved as Latin-1 by an old editor: `ä` in a system prompt is byte 0xE4, not UTF-8."""
    (case_dir / "c.yml").write_bytes("default_system_message: 'Sei präzise'\ndatasets:\n  - path: d.jsonl\n"
                                     "    type: alpaca\n".encode("latin-1"))


def truncated_gguf(case_dir: Path, fixtures: dict) -> None:
    """A .gguf download cut off after a few bytes of an HTML error page (binary, not a git-lfs pointer)."""
    (case_dir / "model.gguf").write_bytes(b"<!DOCTYPE html>\x00\x01")
