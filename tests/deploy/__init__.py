"""Offline checks of deploy/: schemas, the settings a user relies on, the configs served."""
