"""paperloom plugin clip."""
