"""The federation of clusters: the directory, routing across clusters, placement of workspaces."""
