"""The core's built-in plugin `core`: a regression toy that exercises the contract, the Lightning adapter and
the run folder. It has the same shape as every plugin (plugin.py, config.py, components.py, tasks.py, configs/)
and registers through the same hooks."""
