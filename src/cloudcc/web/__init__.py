"""The web front end as the node serves it: the built single-page app (sources in ``web/``)."""
