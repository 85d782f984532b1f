"""What a node tells its operators: Prometheus metrics (``metrics``), served on their own port."""
