"""Data for the scripts: GLUE tasks, local files, tokenizers, and generated tasks."""
