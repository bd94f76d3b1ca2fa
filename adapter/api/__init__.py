"""HTTP blueprints: thin translations between HTTP and the pipeline."""
