"""paperloom-lm: the causal-LM stack every language-model paper plugin shares (no torch at import)."""
