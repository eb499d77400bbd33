"""paperloom plugin: Inheritune (Sanyal et al., arXiv 2404.08634). Cheap to import: no torch here."""
