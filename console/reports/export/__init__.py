"""Shift summary exports: versioned JSON, CSV, XLSX, HTML and PDF reports, written atomically."""
