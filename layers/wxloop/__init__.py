"""wxloop: the WeChat Official Account <-> Mini Program loop, as a serverless backend."""

__version__ = "0.1.0"
