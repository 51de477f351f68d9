"""The results layer: the files the workflow writes and reads (each read failing one way, with the fix), the
layout of a run's folder and its manifest, and the Parquet table contract."""
