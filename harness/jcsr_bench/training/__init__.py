"""Training: adaptive SR (baseline 2) and learned-codec training."""

#: Bump whenever a change to the training code (loop, losses, pairs, EMA, schedules)
#: changes what a given configuration trains: baseline 2's trained-weights store keys
#: include it, so models from the old code are no longer picked up (they stay stored).
#: 2: EMA warm-up from scratch; pairs through the real decode for codecs whose
#: ``reconstruct`` is not exact.
TRAINING_CODE_VERSION = 2
