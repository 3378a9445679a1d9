"""One server process: deploys applications, owns their partitions, bootstraps, shuts down."""
