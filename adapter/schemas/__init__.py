"""Marshmallow schemas: the model registry file and the request options."""
