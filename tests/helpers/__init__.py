"""What several test modules share: running the console scripts, writing datasets in their real formats, the
Inception stand-ins and the DDP cases. Fixtures stay in tests/conftest.py."""
