"""tfs-adapter: an HTTP vision API in front of TensorFlow Serving.

The package never imports TensorFlow; only :mod:`adapter.modelserver` (the
``backend`` extra) does, and nothing else imports it at module level.
"""

__all__ = ["__version__"]

__version__ = "0.1.0"
