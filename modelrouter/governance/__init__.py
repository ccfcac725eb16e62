"""Who may call what, and how much (CONTRACT.md section 5).

The pieces, each in its own module, all driven by the front door:

* :mod:`~modelrouter.governance.types`: the values every piece shares
  (:class:`Identity`, :class:`Scope`, :class:`Limits`, :class:`Ask`, :class:`Grant`)
  and the :class:`Limiter` protocol that the per-process and the Redis limiters both
  implement.
* :mod:`~modelrouter.governance.gate`: the front door's step between planning and
  dispatch: :mod:`~modelrouter.governance.permissions` (allow-lists), then the
  limiter (:mod:`~modelrouter.governance.limiter`: token buckets;
  :mod:`~modelrouter.governance.budget`: spend per period), with the request's
  :mod:`~modelrouter.governance.estimate`; refusals and headers as
  :mod:`~modelrouter.governance.wire` writes them.
"""
