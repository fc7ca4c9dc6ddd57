"""hanode agent: keepalived-compatible VRRP, load balancing and health checks."""

__version__ = "0.1.0"
