"""What extensions see: a ``State`` to read from and ``Intents`` to write to.

An extension reads through the storages its VSQL declares in STATE and writes through those in
INTENTS; each use is checked against that declaration and against the scope the sys package
gives the storage (a query cannot write a record, a command cannot write a view). The contexts
of the call (command or query arguments, the event a projector handles, the job's time) and the
result storages are there without a declaration. The platform applies the intents only after
the extension returns.
"""

from voedger.state.errors import StateError
from voedger.state.intents import Intents
from voedger.state.state import CommandContext, JobContext, QueryContext, State

__all__ = ["CommandContext", "Intents", "JobContext", "QueryContext", "State", "StateError"]
