"""The scheduling room: loaded models, who holds them, and the memory they take.

``scheduler`` (``ModelScheduler.lease``), ``limits`` (``SchedulerConfig``), ``lifecycle`` (load,
evict, unload), ``slots``, ``leases``, ``workers`` (one thread per model), ``cooldown`` (after a
failed load), ``factory`` (a catalog entry -> a backend object), ``placement`` (which device, what
must leave), ``memory`` (RAM and GPU probes), ``devices`` (``GpuInfo``) and ``nvml``.

May import: the shared types at the top of ``inference``, ``inference.catalog`` and
``inference.backends``.
"""
