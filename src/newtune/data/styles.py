"""Prompt styles: format strings that render an InstructRow as Segments."""

from __future__ import annotations

STYLES = ("instruct", "chat", "chatml", "phi")
