"""Talking to TensorFlow Serving: wire protos, tensor codec, gRPC client."""
