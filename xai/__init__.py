"""xai-report: explain torchvision image classifiers and publish the findings as a static site."""

__version__ = "0.1.0"
