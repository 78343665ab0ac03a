"""Event generators and the sample registry."""
