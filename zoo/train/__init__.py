"""Training: the one training step (`zoo.train.step`), Lightning-free, that every loop calls, and the Lightning
harness that trains any method with it (`zoo.train.harness.Pretrainer`)."""
