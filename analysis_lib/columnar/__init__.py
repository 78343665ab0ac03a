"""Columnar analysis with coffea: selections, features, systematic variations, inference."""
