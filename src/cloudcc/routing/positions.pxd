# Cython declarations for positions.py (see records.pxd).

cdef class RankedKeys:
    cdef public list _blocks
    cdef public Py_ssize_t _len
    cdef public list _maxes
    cpdef Py_ssize_t add(self, tuple key) except -1
    cpdef remove(self, tuple key)
    cpdef Py_ssize_t rank(self, tuple key) except -1

cdef class AnswerPace:
    cdef public double interval
    cdef public object last
    cdef public long samples
    cpdef answered(self, double now)
