"""Packaged rule files (TOML): categories, step markers, expectations."""
