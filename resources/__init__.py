"""Packaged resources: style sheet, icons, sample data (loaded through importlib.resources)."""
