# Cython declarations for engine.py (compiled when the build has Cython; see setup.py):
# the engine's fields and its hot internal methods become C, the .py stays the source.
# Public methods keep their Python signatures (cpdef: callable from Python as before).
cimport cython

from cloudcc.routing.positions cimport AnswerPace, RankedKeys
from cloudcc.routing.stats cimport QueueCounters
from cloudcc.routing.records cimport AgentRecord, Lane, QueueRecord, QueuedContact, WorkItem
from cloudcc.routing.timers cimport TimerQueue


cdef class RoutingEngine:
    cdef public dict _agents
    cdef public dict _agents_by_skill
    cdef public list _by_state
    cdef public list _carry
    cdef public dict _contacts
    cdef public dict _direct
    cdef public list _free_queue_slots
    cdef public list _free_slots
    cdef public dict _lanes_by_skill
    cdef public list _members_in
    cdef public double _now
    cdef public object _places
    cdef public dict _queues
    cdef public dict _queues_by_skill
    cdef public long _ranks
    cdef public dict _reasons
    cdef public long long _seq
    cdef public TimerQueue _timers
    cdef public list _uncounted
    cdef public object tenant_id

    @cython.locals(c=QueuedContact, q=QueueRecord, contacts=dict)
    cpdef list contact_queued(self, contact_id, queue_id, channel, double now, priority=*, required_skills=*, preferred_agent=*, enqueued_at=*)
    @cython.locals(c=QueuedContact)
    cpdef list contact_abandoned(self, contact_id, double now)
    @cython.locals(c=QueuedContact, a=AgentRecord, o=AgentRecord, w=WorkItem)
    cpdef list offer_accepted(self, contact_id, agent_id, double now)
    @cython.locals(c=QueuedContact, a=AgentRecord, w=WorkItem, q=QueueRecord, counters=QueueCounters)
    cpdef list contact_ended(self, contact_id, double now)
    cpdef list tick(self, double now)
    @cython.locals(heap=list, kind=long)
    cpdef next_deadline(self)

    @cython.locals(heap=list, at=double, kind=long, w=WorkItem, c=QueuedContact)
    cdef list _advance(self, double now)
    cdef _timer(self, double at, kind, obj, double delay)
    @cython.locals(si=long, old=long, counts=list, history=list)
    cdef _publish(self, AgentRecord a, double at, list out, by=*)
    cdef _drop_item(self, AgentRecord a, WorkItem w)
    cdef _end_wrap(self, AgentRecord a, WorkItem w, double at, list out)
    @cython.locals(slot=Py_ssize_t, leaving=list, entering=list, members_in=list)
    cdef _count(self, AgentRecord a)
    @cython.locals(a=AgentRecord)
    cdef _count_all(self)
    @cython.locals(best_lane=Lane, lane=Lane, c=QueuedContact, q=QueueRecord, scan=list, best=tuple, head=tuple, place=double, best_place=double, lanes=list)
    cdef _serve(self, AgentRecord a, double at, list out)
    @cython.locals(lane=Lane, lanes=list, shared=dict, heap=list, entry=tuple)
    cdef _park(self, AgentRecord a)
    @cython.locals(q=QueueRecord, pa=AgentRecord, lane=Lane, pool=Lane, a=AgentRecord)
    cdef _place(self, QueuedContact c, double at, list out)
    @cython.locals(q=QueueRecord, a=AgentRecord, expires=double, ring=double, load=dict, rr=bint, call=bint)
    cdef _offer(self, QueuedContact c, agents, double at, list out)
    cdef _enter(self, QueuedContact c, QueueRecord q, double at, list out)
    cdef long _join(self, QueuedContact c, QueueRecord q, double at)
    cdef _schedule_contact(self, QueuedContact c, QueueRecord q, double entered, double now)
    @cython.locals(position=long, pace=AnswerPace)
    cdef _announce(self, QueuedContact c, QueueRecord q, list out, rank=*)
    @cython.locals(wait=double, counters=QueueCounters)
    cdef _leave(self, QueuedContact c, object outcome, double at)
    cdef Lane _lane(self, QueueRecord q, QueuedContact c)


@cython.locals(c=QueuedContact, head=tuple, heap=list)
cdef _settle(Lane lane)
cdef double _place_of(QueuedContact c, object cfg)
@cython.locals(heap=list, a=AgentRecord, entry=tuple)
cdef AgentRecord _pop_agent(Lane lane)
@cython.locals(pool=Lane, heap=list, a=AgentRecord, found=AgentRecord, entry=tuple)
cdef AgentRecord _pop_borrowed(Lane lane)
@cython.locals(entry=tuple, last=QueuedContact)
cdef _enlane(QueuedContact c, Lane lane)
@cython.locals(lane=Lane)
cdef _unlane(QueuedContact c)
@cython.locals(c=QueuedContact)
cdef _trim_entries(QueueRecord q)
