"""LightningDataModules: embedded datasets that need no download, and torchvision datasets."""
