# Cython declarations for stats.py (see records.pxd): the counters the engine moves on
# every event; the frozen views stay Python classes.

cdef class QueueCounters:
    cdef public long abandoned
    cdef public double answer_wait_total
    cdef public long answered
    cdef public long answered_in_sl
    cdef public long callbacks
    cdef public long entered
    cdef public double handle_total
    cdef public long handled
    cdef public long offers
    cdef public long overflowed
    cdef public long rejects
    cdef public long ring_timeouts
    cdef public dict treated
