"""Training: adaptive SR (baseline 2) and learned-codec training."""

# Bump when what training produces from the same configuration and data changes (loop,
# EMA, how pairs are made), so that adaptive-model identities and sidecars tell old
# checkpoints from new ones. 2: EMA warm-up from scratch; pairs through real decode for
# codecs whose ``reconstruct`` is not exact.
TRAINING_CODE_VERSION = 2
