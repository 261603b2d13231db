"""security stage."""
