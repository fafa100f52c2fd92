"""Demo data: placeholder."""
