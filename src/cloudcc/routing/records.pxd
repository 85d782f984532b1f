# Cython declarations for records.py (compiled when the build has Cython; see setup.py).
# The .py stays the source and runs as it is without a compiler. Identifiers and
# priorities stay Python objects (any value the pure engine takes); counters and times are
# C fields.

from cloudcc.routing.positions cimport AnswerPace, RankedKeys
from cloudcc.routing.stats cimport QueueCounters

cdef class _Record:
    pass

cdef class Lane(_Record):
    cdef public object agent_fifo
    cdef public list agents
    cdef public object channel
    cdef public list contacts
    cdef public long eligible
    cdef public object fifo
    cdef public tuple head
    cdef public long ix
    cdef public object key_fn
    cdef public double place
    cdef public object places
    cdef public Lane pool
    cdef public QueueRecord queue
    cdef public object queue_id
    cdef public tuple requirement
    cdef public long stage
    cdef public long waiting

cdef class QueuedContact(_Record):
    cdef public AgentRecord agent
    cdef public long long announce_seq
    cdef public double arrived_at
    cdef public bint callback
    cdef public object channel
    cdef public double connected_at
    cdef public object contact_id
    cdef public double entered_at
    cdef public tuple extra
    cdef public long hops
    cdef public bint in_queue
    cdef public Lane lane
    cdef public bint max_wait_due
    cdef public double offer_expires
    cdef public object offered_to
    cdef public long long order
    cdef public object preferred
    cdef public long long preferred_seq
    cdef public double preferred_until
    cdef public object priority
    cdef public QueueRecord queue
    cdef public bint ring_all
    cdef public long long ring_seq
    cdef public tuple rkey
    cdef public long stage
    cdef public long long stage_seq
    cdef public object state
    cdef public double vkey
    cdef public long long wait_seq

cdef class WorkItem(_Record):
    cdef public AgentRecord agent
    cdef public object channel
    cdef public QueuedContact contact
    cdef public object contact_id
    cdef public object phase
    cdef public QueueRecord queue
    cdef public double since
    cdef public long long wrap_seq

cdef class AgentRecord(_Record):
    cdef public object agent_id
    cdef public long answered
    cdef public double available_since
    cdef public object by
    cdef public long call_items
    cdef public dict capacity
    cdef public object cfg
    cdef public long counted
    cdef public long handled
    cdef public list history
    cdef public dict items
    cdef public dict lanes
    cdef public dict load
    cdef public long max_total
    cdef public long n_active
    cdef public long n_alerting
    cdef public long n_offered
    cdef public long n_pre
    cdef public long n_wrap
    cdef public bint nr_auto
    cdef public long long nr_seq
    cdef public long offered
    cdef public object personal
    cdef public object presence
    cdef public list queue_slots
    cdef public list queues
    cdef public long rank
    cdef public object reason
    cdef public long rejected
    cdef public long ring_timeouts
    cdef public dict rr
    cdef public object scan
    cdef public object shown_reason
    cdef public long si
    cdef public bint single
    cdef public dict skills
    cdef public object state
    cdef public double state_since
    cdef public double time_in[9]  # one per state: len(STATES) (tests/routing/test_builds.py)
    cdef public long total
    cdef public bint uncounted
    cdef public long long version
    cpdef bint can_take(self, object channel)
    cpdef bint meets(self, tuple requirement)

cdef class QueueRecord(_Record):
    cdef public long callbacks_waiting
    cdef public object cfg
    cdef public QueueCounters counters
    cdef public object entries
    cdef public object key_fn
    cdef public dict lanes
    cdef public dict members
    cdef public list members_in
    cdef public AnswerPace pace
    cdef public object queue_id
    cdef public RankedKeys ranked
    cdef public long rr_counter
    cdef public long slot
    cdef public list stages
    cdef public bint timed
    cdef public long waiting
