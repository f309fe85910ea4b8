"""Generator and discriminator architectures."""
