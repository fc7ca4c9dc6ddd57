"""Operations: alert mail, the notify FIFO, systemd notify and Prometheus metrics (issue 5)."""
