import { useCallback, useEffect, useMemo, useRef, useState } from "react";
import { api, call } from "../shared/api/client";
import { can, session, useSession } from "../shared/auth/session";
import { useStream } from "../shared/events/context";
import { EventStream } from "../shared/events/stream";
import { epochSeconds } from "../shared/time";

export interface QueueRow {
  id: string;
  name: string;
  waiting: number;
  longest_wait: number;
  service_level: number | null;
  abandon_rate: number | null;
  staffed: number;
  agents_by_state: Record<string, number>;
  required_skills: Record<string, number>;
}

export interface AgentRow {
  id: string;
  name: string;
  extension: string;
  state: string;
  reason: string | null;
  since: number;
  contacts: number;
  skills: Record<string, number>;
}

export interface LiveRow {
  contact_id: string;
  customer: string | null;
  queue: string | null;
  state: string;
  agent_id: string | null;
  created_at: string; // ISO 8601
  monitored: boolean;
}

export interface Floor {
  queues: QueueRow[];
  agents: AgentRow[];
  contacts: LiveRow[];
  byState: Record<string, number>;
  waitingSeries: { t: number; waiting: number }[];
}

const REFRESH_ON = ["contact.*", "queue.*", "leg.*", "agent.*"];
const SERIES_SECONDS = 600;

/** The tab's stream, unless the supervisor is also an agent: the node then gives that stream
 * the agent's own events only (docs/events.md), so the wallboard opens its own with the
 * tenant's (or the supervisor's) scope while it is shown. */
function useFloorStream(): EventStream {
  const shared = useStream();
  const { me } = useSession();
  const scope = !me?.agent_id ? null : can(me, "events:tenant") ? "tenant" : "supervisor";
  const own = useMemo(() => (scope ? new EventStream({ token: session.token, onUnauthorized: session.expire, scope }) : null), [scope]);
  useEffect(() => {
    if (!own) return;
    own.start();
    return () => own.stop();
  }, [own]);
  return own ?? shared;
}

/** The floor: a snapshot from the API, refreshed when an event says something changed (at
 * most every 200 ms), agents' states included. No polling. */
export function useFloor(): Floor {
  const stream = useFloorStream();
  const [floor, setFloor] = useState<Floor>({ queues: [], agents: [], contacts: [], byState: {}, waitingSeries: [] });
  const names = useRef<{
    queues: Record<string, { name: string; required_skills: Record<string, number> }>;
    agents: { id: string; name: string; extension: string; skills: Record<string, number> }[];
  }>({ queues: {}, agents: [] });
  const pending = useRef<{ timer: ReturnType<typeof setTimeout> | null; events: number[] }>({ timer: null, events: [] });

  const load = useCallback(async () => {
    const [board, live] = await Promise.all([call(api.GET("/api/v1/wallboard")), call(api.GET("/api/v1/contacts/live"))]);
    const statuses = await Promise.all(
      names.current.agents.map((a) =>
        call(api.GET("/api/v1/agents/{agent_id}/status", { params: { path: { agent_id: a.id } } })).then(
          (s) => ({ ...a, state: s.state, reason: s.reason, since: s.since, contacts: s.contacts.length }),
          () => ({ ...a, state: "offline", reason: null, since: Date.now() / 1000, contacts: 0 }),
        ),
      ),
    );
    const b = board as { at: number; queues: Record<string, Omit<QueueRow, "id" | "name">>; agents_by_state: Record<string, number>; contacts_waiting: number };
    const monitored = new Set(floorMonitored.current);
    setFloor((prev) => ({
      queues: Object.entries(b.queues).map(([id, q]) => ({ ...q, id, name: names.current.queues[id]?.name ?? id, required_skills: names.current.queues[id]?.required_skills ?? {} })),
      agents: statuses,
      contacts: (live as Omit<LiveRow, "monitored">[]).map((c) => ({ ...c, monitored: monitored.has(c.contact_id) })),
      byState: b.agents_by_state,
      waitingSeries: [...prev.waitingSeries.filter((p) => p.t > b.at - SERIES_SECONDS), { t: b.at, waiting: b.contacts_waiting }],
    }));
    // For bench/web.py: how long after each event its effect was on screen.
    const w = window as unknown as { ccWallboard?: number[] };
    w.ccWallboard ??= [];
    const shown = Date.now() / 1000;
    for (const at of pending.current.events.splice(0)) w.ccWallboard.push(shown - at);
  }, []);

  const floorMonitored = useRef<Set<string>>(new Set());

  useEffect(() => {
    let alive = true;
    void (async () => {
      const [queues, agents] = await Promise.all([
        call(api.GET("/api/v1/queues", { params: { query: { limit: 500 } } })).catch(() => ({ items: [] as { id: string; name: string; required_skills: Record<string, number> }[] })),
        call(api.GET("/api/v1/agents", { params: { query: { limit: 500 } } })).catch(() => ({ items: [] as { id: string; name: string; extension: string; skills: Record<string, number> }[] })),
      ]);
      names.current = {
        queues: Object.fromEntries(queues.items.map((q) => [q.id, { name: q.name, required_skills: q.required_skills ?? {} }])),
        agents: agents.items.map((a) => ({ id: a.id, name: a.name, extension: a.extension, skills: a.skills ?? {} })),
      };
      if (alive) await load().catch(() => undefined);
    })();
    const schedule = (at: number) => {
      pending.current.events.push(at);
      if (pending.current.timer) return;
      pending.current.timer = setTimeout(() => {
        pending.current.timer = null;
        void load().catch(() => undefined);
      }, 200);
    };
    const offs = REFRESH_ON.map((p) =>
      stream.on(p, (e) => {
        if (e.type === "leg.monitoring") floorMonitored.current.add(String(e.data.contact_id));
        schedule(epochSeconds(e.at, Date.now() / 1000));
      }),
    );
    offs.push(stream.on("stream.hello", () => void load().catch(() => undefined)));
    return () => {
      alive = false;
      offs.forEach((off) => off());
    };
  }, [stream, load]);

  return floor;
}
