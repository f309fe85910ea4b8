"""Sample-quality metrics: one scorer per protocol, each mapping generated samples to a dict of floats."""
