"""Config: axolotl-compatible keys, validated strictly into a frozen RunConfig."""
