# Cython declarations for timers.py (see records.pxd).

cdef class TimerQueue:
    cdef public dict fifos
    cdef public list heap
    cpdef add(self, double at, seq, kind, obj, double delay)
