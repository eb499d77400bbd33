"""paperloom-alphallm: AlphaLLM (arXiv 2404.12253), eta-MCTS with three critics and the self-improvement loop."""
