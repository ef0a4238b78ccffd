"""What the benchmarks share.

``server``: gunicorn servers, started, frozen, thawed and stopped by pid; ``load``: wrk and a paced
HTTP load; ``ticks``: CPU time from /proc; ``shield``: the runs' priority over other processes;
``slices``: one load of one server measured from idle to idle; ``sidebyside``: configurations
compared over rounds of slices; ``reports``: what a server wrote; ``table``: printing;
``options``: the command-line options the server benchmarks share.
"""

import os

#: The checkout: bench/ and the package are under it.
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
