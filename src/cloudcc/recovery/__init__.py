"""Staying up on one node: what a node keeps so that a restart after a crash releases the
calls it left behind, closes their records, and brings its agents back as they were."""
