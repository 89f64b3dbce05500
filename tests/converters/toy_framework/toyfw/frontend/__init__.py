"""toyfw -> IR, one layer at a time (driver, context, registry, ``ops/``); imports only ``native``."""
