"""Several replicas acting as one router through Redis (CONTRACT.md section 8).

* :mod:`~modelrouter.cluster.link`: the one Redis connection manager of a process
  (clients with bounded timeouts, ``ok``/``down``/``connecting``, rejoin, Redis time,
  the versioned key prefix); the rate limiter shares it.
* :mod:`~modelrouter.cluster.tracker`: the health tracker of a replica: local reads,
  writes that also feed an outbox, and :meth:`adopt` for what others decided.
* :mod:`~modelrouter.cluster.sync`: the outbox to Redis (batched, in the background)
  and Redis's pub/sub back into the tracker, with a snapshot on every (re)join.
* :mod:`~modelrouter.cluster.scripts`: the Lua that merges outcomes and keeps the
  newest event; :mod:`~modelrouter.cluster.lease`: one prober at a time.
* :mod:`~modelrouter.cluster.node`: :class:`Cluster`, all of the above for one process.
* :mod:`~modelrouter.cluster.instance`: the replica's name.

Nothing here imports ``redis`` until a config has ``cluster.redis_url``.
"""
