"""Training: the one training step (`zoo.train.step`), Lightning-free, that every loop calls."""
