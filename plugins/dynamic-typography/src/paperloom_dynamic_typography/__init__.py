"""paperloom-dynamic-typography: Dynamic Typography (Liu et al., arXiv 2404.11614) as a paperloom plugin."""

__version__ = "0.2.0"
