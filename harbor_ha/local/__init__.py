"""The local AWS target: a moto server on loopback, managed by harbor-ha, with moto's gaps closed."""
