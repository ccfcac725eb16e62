"""Who may call what, and how much (CONTRACT.md section 5).

The pieces, each in its own module, all driven by the front door:

* :mod:`~modelrouter.governance.types`: the values every piece shares
  (:class:`Identity`, :class:`Scope`, :class:`Limits`, :class:`Ask`, :class:`Grant`)
  and the :class:`Limiter` protocol that the per-process and the Redis limiters both
  implement.
"""
