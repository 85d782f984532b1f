// The agent's live picture, folded from the event stream (pure: unit-tested in model.test.ts).
import type { StreamEvent } from "../shared/events/stream";
import { epochSeconds } from "../shared/time";

export interface Status {
  state: string;
  cti_code: number;
  reason: string | null;
  since: number;
  device: string | null;
}

export type Phase = "ringing" | "talking" | "wrapup";

/** The contact's live recording: being written, paused (the pause is left out of the file). */
export type RecordingState = "recording" | "paused";

/** A caller's answer in the IVR (docs/ivr.md events: flow.input_collected). */
export interface Choice {
  node: string;
  value: string;
  mode: string | null;
}

/** One step of the contact's way in: a flow (with the choices made there), a queue, an agent. */
export interface PathStep {
  type: string;
  name: string;
  choices: Choice[];
}

/** A party the agent consulted (a leg of role "consult"). */
export interface Consult {
  leg: string;
  peer: string;
  agentId: string | null;
  answered: boolean;
}

export interface LiveContact {
  id: string;
  phase: Phase;
  customer: string | null;
  dialed: string | null;
  queue: string | null;
  direction: string;
  offeredAt: number;
  connectedAt: number | null;
  heldSince: number | null;
  heldTotal: number;
  muted: boolean;
  recording: RecordingState | null;
  wrapupAt: number | null;
  path: PathStep[];
  attributes: Record<string, unknown>;
  consult: Consult | null;
  conference: boolean;
  /** in wrap-up for this agent's own part: it handed the contact on, which goes on without it */
  part: boolean;
  /** the time the offer was shown in the page (performance.now()), for the pop-up figure */
  shownAt?: number;
}

export interface AgentPicture {
  status: Status | null;
  contacts: Record<string, LiveContact>;
}

export const EMPTY: AgentPicture = { status: null, contacts: {} };

// CEC's CTI state names (PRODUCT.md appendix), by code, shown beside ours.
export const CEC_STATES = [
  "not signed in",
  "idle",
  "pre-occupied",
  "occupied",
  "answering",
  "talking",
  "working",
  "busy",
  "rest",
  "study",
  "adjusting",
] as const;

function str(v: unknown): string | null {
  return typeof v === "string" ? v : null;
}

function pathOf(value: unknown): PathStep[] {
  if (!Array.isArray(value)) return [];
  return (value as Record<string, unknown>[]).map((step) => ({
    type: String(step.type),
    name: String(step.name),
    choices: (Array.isArray(step.choices) ? (step.choices as Record<string, unknown>[]) : []).map((c) => ({
      node: String(c.node ?? ""),
      value: String(c.value ?? ""),
      mode: str(c.mode),
    })),
  }));
}

function recordingOf(value: unknown): RecordingState | null {
  return value === "recording" || value === "paused" ? value : null;
}

function attributesOf(value: unknown): Record<string, unknown> {
  return value && typeof value === "object" && !Array.isArray(value) ? (value as Record<string, unknown>) : {};
}

function fromData(id: string, data: Record<string, unknown>, at: number, phase: Phase): LiveContact {
  return {
    id,
    phase,
    customer: str(data.customer),
    dialed: str(data.dialed),
    queue: str(data.queue),
    direction: str(data.direction) ?? "inbound",
    offeredAt: at,
    connectedAt: phase === "talking" ? at : null,
    heldSince: null,
    heldTotal: 0,
    muted: false,
    recording: recordingOf(data.recording),
    wrapupAt: null,
    path: pathOf(data.path),
    attributes: attributesOf(data.attributes),
    consult: null,
    conference: false,
    part: false,
  };
}

function without(contacts: Record<string, LiveContact>, id: string): Record<string, LiveContact> {
  const next = { ...contacts };
  delete next[id];
  return next;
}

/** The picture after one event of this agent's stream. */
export function apply(pic: AgentPicture, event: StreamEvent, agentId: string): AgentPicture {
  const data = event.data ?? {};
  const at = epochSeconds(event.at, Date.now() / 1000);
  if (event.type === "agent.state_changed") {
    if (data.agent_id !== agentId) return pic;
    return {
      ...pic,
      status: {
        state: String(data.state),
        cti_code: Number(data.cti_code),
        reason: str(data.reason),
        since: epochSeconds(data.at, at),
        device: pic.status?.device ?? null,
      },
    };
  }
  const id = str(data.contact_id);
  if (!id) return pic;
  const current = pic.contacts[id];
  const put = (c: LiveContact): AgentPicture => ({ ...pic, contacts: { ...pic.contacts, [id]: c } });
  switch (event.type) {
    case "contact.offered": {
      const offered = Array.isArray(data.agents) ? data.agents : [];
      if (!offered.includes(agentId) || current) return pic;
      return put(fromData(id, data, at, "ringing"));
    }
    case "contact.connected": {
      // Answered by another (or, after this agent handed it on, taken by the next one): gone,
      // unless this agent is wrapping up its own part of it.
      if (data.agent_id !== agentId) return current && current.phase !== "wrapup" ? { ...pic, contacts: without(pic.contacts, id) } : pic;
      // The way in gains the agent's step: the event carries the path as it is now.
      const path = Array.isArray(data.path) ? { path: pathOf(data.path) } : {};
      return put({ ...(current ?? fromData(id, data, at, "talking")), ...path, phase: "talking", connectedAt: current?.connectedAt ?? at });
    }
    case "contact.queued":
    case "contact.transferred":
      // The offer went elsewhere (ring timeout, answered by another) or the agent handed it on.
      if (current && current.phase !== "wrapup" && data.agent_id !== agentId) return { ...pic, contacts: without(pic.contacts, id) };
      return pic;
    case "leg.created":
    case "leg.ringing":
    case "leg.answered": {
      const leg = (data.leg ?? {}) as Record<string, unknown>;
      if (!current || leg.role !== "consult") return pic;
      return put({ ...current, consult: { leg: String(leg.id), peer: String(leg.peer ?? ""), agentId: str(leg.agent_id), answered: event.type === "leg.answered" || current.consult?.answered === true } });
    }
    case "leg.ended": {
      const leg = (data.leg ?? {}) as Record<string, unknown>;
      // The agent left a consultation or conference: the contact goes on without it.
      if (current?.consult && leg.role === "agent" && leg.agent_id === agentId) return { ...pic, contacts: without(pic.contacts, id) };
      if (!current || leg.role !== "consult" || current.consult?.leg !== leg.id) return pic;
      return put({ ...current, consult: null, conference: false });
    }
    case "contact.conferenced":
      // The customer comes off hold into the three-way call.
      return current ? put({ ...current, conference: true, heldTotal: current.heldTotal + (current.heldSince ? at - current.heldSince : 0), heldSince: null }) : pic;
    case "leg.held":
      return current ? put({ ...current, heldSince: at }) : pic;
    case "leg.unheld":
      return current ? put({ ...current, heldSince: null, heldTotal: current.heldTotal + (current.heldSince ? at - current.heldSince : 0) }) : pic;
    case "leg.muted":
      return current ? put({ ...current, muted: true }) : pic;
    case "leg.unmuted":
      return current ? put({ ...current, muted: false }) : pic;
    case "recording.started":
      return current ? put({ ...current, recording: "recording" }) : pic;
    case "recording.stopped":
    case "recording.failed":
      return current ? put({ ...current, recording: null }) : pic;
    case "contact.recording":
      // paused / resumed (or started, stopped) through the API, by this tab or anyone
      return current ? put({ ...current, recording: recordingOf(data.state) }) : pic;
    case "contact.wrapup_started":
      // This agent's after-call work: the contact's end, or its own part once it handed the
      // contact on (a transfer, leaving a conference) while the contact goes on.
      if (data.agent_id !== undefined && data.agent_id !== agentId) return pic;
      return put({ ...(current ?? fromData(id, data, at, "wrapup")), phase: "wrapup", wrapupAt: at, heldSince: null, consult: null, conference: false, recording: null, part: data.part === true });
    case "contact.released":
    case "contact.ended":
      // A contact in wrap-up stays until the agent finishes it; anything else is gone.
      if (!current || current.phase === "wrapup") return pic;
      return { ...pic, contacts: without(pic.contacts, id) };
    default:
      return pic;
  }
}

/** The contact wrap-up is done for (the API answered the wrap-up). */
export function finishWrapup(pic: AgentPicture, id: string): AgentPicture {
  return { ...pic, contacts: without(pic.contacts, id) };
}

const PHASE_OF: Record<string, Phase> = { offered: "ringing", dialing: "talking", connected: "talking", wrapup: "wrapup" };

/** The picture after a snapshot of the agent's live contacts (GET /contacts/live), as after a
 * reload: contacts the events already follow keep their state, the others are added. */
export function seed(pic: AgentPicture, live: Record<string, unknown>[], agentId: string): AgentPicture {
  const contacts = { ...pic.contacts };
  for (const item of live) {
    const id = str(item.contact_id);
    // A contact this agent handed on and still wraps up its part of is in wrap-up for it.
    const wrapping = Array.isArray(item.wrapping) && item.wrapping.includes(agentId) && item.agent_id !== agentId;
    const phase = wrapping ? "wrapup" : PHASE_OF[String(item.state)];
    if (!id || !phase || (item.agent_id !== agentId && !wrapping) || contacts[id]) continue;
    const legs = Array.isArray(item.legs) ? (item.legs as Record<string, unknown>[]) : [];
    const agentLeg = legs.findLast((l) => l.agent_id === agentId);
    const created = epochSeconds(item.created_at, Date.now() / 1000);
    const answered = epochSeconds(agentLeg?.answered_at, created);
    const c = fromData(id, item, created, phase);
    const consultLeg = wrapping ? undefined : legs.find((l) => l.role === "consult" && l.state !== "ended");
    const consult = consultLeg ? { leg: String(consultLeg.id), peer: String(consultLeg.peer ?? ""), agentId: str(consultLeg.agent_id), answered: consultLeg.answered_at != null } : null;
    contacts[id] = { ...c, consult, part: wrapping, connectedAt: phase === "ringing" ? null : answered, wrapupAt: phase === "wrapup" ? epochSeconds(agentLeg?.ended_at, created) : null };
  }
  return { ...pic, contacts };
}
