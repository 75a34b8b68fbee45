"""Training: adaptive SR (baseline 2) and learned-codec training."""
