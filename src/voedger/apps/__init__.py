"""Built-in applications and packages: ``sys`` (given to every application), later the registry
and cluster applications."""
