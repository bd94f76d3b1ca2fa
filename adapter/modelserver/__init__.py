"""The local TF-Serving-compatible model server and the demo models it serves (backend extra)."""
