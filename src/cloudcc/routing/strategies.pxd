# Cython declarations for strategies.py (see records.pxd). The keys are C functions; a
# lane still calls its queue's key as a Python callable (any key a queue may hold).
cimport cython

cpdef tuple longest_idle(agent, tuple requirement, queue_id)
@cython.locals(total=double)  # levels are numbers 1-10: any, as in Python
cpdef tuple most_skilled(agent, tuple requirement, queue_id)
cpdef tuple least_occupied(agent, tuple requirement, queue_id)
cpdef tuple round_robin(agent, tuple requirement, queue_id)
