"""Change events: every committed change and lifecycle event, published to Kafka and/or webhooks.

The update log in the store is the outbox: ``source`` turns stored rows into events,
``publisher`` runs one loop per sink (a cursor per document in the store, leases so one
hub node publishes each part), ``kafka`` and ``webhooks`` are the sink adapters, and
``envelope`` is the versioned JSON envelope (schema in ``schema/event-v1.json``).
"""
