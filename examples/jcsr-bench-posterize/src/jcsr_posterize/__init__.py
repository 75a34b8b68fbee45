"""Example jcsr-bench plugin package."""
