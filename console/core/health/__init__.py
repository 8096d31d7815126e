"""Health checks of one cluster: the server, replication, connections, wraparound, PgBouncer,
backups and the scheduler, each with a value, thresholds from ``[health]`` and a state in
words; samples of each recorded run in ``health_samples`` for the graphs."""
