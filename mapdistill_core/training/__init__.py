"""Training: experiment configs, datasets for the loop, the loop itself, evaluation."""
