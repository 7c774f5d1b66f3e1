"""edenkit: learn, reproduce and extend Adam/Eve, anatomy-aware self-supervised learning for chest X-rays."""

__version__ = "0.1.0"
