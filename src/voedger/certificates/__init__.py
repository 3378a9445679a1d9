"""TLS certificates by ACME (``voedger server --acme-domain``): ordered with HTTP-01 challenges,
kept in the cluster's storage, served and renewed without a restart.

- :mod:`.order`: one order through certbot's ``acme`` library;
- :mod:`.store`: the account key, the certificate with its key, the ordering lock and the
  challenges' key authorizations in the cluster's storage;
- :mod:`.served`: the listener's TLS context, whose certificate changes for new connections;
- :mod:`.challenges`: the HTTP-01 challenge port;
- :mod:`.manager`: the background task that ties them together.
"""
