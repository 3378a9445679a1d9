"""The files `vpm init` makes a new application from (``*.tmpl``, formatted with its name)."""
