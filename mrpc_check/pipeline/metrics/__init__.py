"""Bundled `evaluate` metric modules, loaded by path so that nothing is downloaded."""
