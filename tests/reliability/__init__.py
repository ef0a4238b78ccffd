"""Reliability: faults in and around the plugin never change a response, kill a worker or leave
a partial report."""
