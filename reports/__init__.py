"""Charts, tables and self-contained HTML reports of capability profiles."""
