import { describe, expect, it } from "vitest";
import { apply, EMPTY, finishWrapup, seed, type AgentPicture } from "./model";

const ME = "a".repeat(32);
const OTHER = "b".repeat(32);
const C = "c".repeat(32);
let seq = 0;
const ev = (type: string, data: Record<string, unknown>, at = 100) => ({ seq: ++seq, type, at: new Date(at * 1000).toISOString(), data });

function run(events: ReturnType<typeof ev>[], start: AgentPicture = EMPTY): AgentPicture {
  return events.reduce((pic, e) => apply(pic, e, ME), start);
}

describe("the agent's picture from its events", () => {
  it("follows an offer to talking, hold time, wrap-up and its end", () => {
    const base = { contact_id: C, customer: "+15550001", dialed: "4000", queue: "sales", direction: "inbound" };
    let pic = run([ev("contact.offered", { ...base, agents: [ME, OTHER], agent_id: null }, 100)]);
    expect(pic.contacts[C]).toMatchObject({ phase: "ringing", customer: "+15550001", queue: "sales" });
    pic = run([ev("contact.connected", { ...base, agent_id: ME }, 103), ev("leg.held", { contact_id: C }, 110), ev("leg.unheld", { contact_id: C }, 115)], pic);
    expect(pic.contacts[C]).toMatchObject({ phase: "talking", connectedAt: 103, heldTotal: 5, heldSince: null });
    pic = run([ev("leg.muted", { contact_id: C }), ev("contact.wrapup_started", { ...base, agent_id: ME }, 130), ev("contact.ended", { ...base, agent_id: ME }, 131)], pic);
    expect(pic.contacts[C]).toMatchObject({ phase: "wrapup", wrapupAt: 130, muted: true });
    expect(finishWrapup(pic, C).contacts).toEqual({});
  });

  it("drops an offer another agent answered and ignores offers to others", () => {
    const base = { contact_id: C, customer: "+1", queue: "q" };
    let pic = run([ev("contact.offered", { ...base, agents: [OTHER] })]);
    expect(pic.contacts).toEqual({});
    pic = run([ev("contact.offered", { ...base, agents: [ME, OTHER] }), ev("contact.connected", { ...base, agent_id: OTHER })]);
    expect(pic.contacts).toEqual({});
  });

  it("takes only its own state changes", () => {
    const pic = run([
      ev("agent.state_changed", { agent_id: ME, state: "not_ready", reason: "rest", cti_code: 8, at: 50 }),
      ev("agent.state_changed", { agent_id: OTHER, state: "ready", reason: null, cti_code: 1, at: 60 }),
    ]);
    expect(pic.status).toMatchObject({ state: "not_ready", reason: "rest", cti_code: 8, since: 50 });
  });
});

describe("a snapshot after a reload", () => {
  it("adds the agent's live contacts that the events do not follow yet", () => {
    const live = [
      { contact_id: C, state: "wrapup", agent_id: ME, customer: "+1", queue: "sales", created_at: 10, legs: [{ role: "agent", agent_id: ME, answered_at: 12, ended_at: 40 }] },
      { contact_id: "d".repeat(32), state: "connected", agent_id: OTHER, legs: [] },
    ];
    const pic = seed(EMPTY, live, ME);
    expect(Object.keys(pic.contacts)).toEqual([C]);
    expect(pic.contacts[C]).toMatchObject({ phase: "wrapup", connectedAt: 12, wrapupAt: 40, queue: "sales" });
  });

  it("keeps the IVR path with its choices and the attributes from the offer", () => {
    const path = [{ type: "flow", name: "demo-main", at: "x", choices: [{ node: "main_menu", value: "sales", mode: "dtmf" }] }, { type: "queue", name: "sales" }];
    const pic = run([ev("contact.offered", { contact_id: C, customer: "+1", queue: "sales", agents: [ME], path, attributes: { choice: "sales" } })]);
    expect(pic.contacts[C]?.path).toEqual([
      { type: "flow", name: "demo-main", choices: [{ node: "main_menu", value: "sales", mode: "dtmf" }] },
      { type: "queue", name: "sales", choices: [] },
    ]);
    expect(pic.contacts[C]?.attributes).toEqual({ choice: "sales" });
  });

  it("follows a consultation into a conference and its end", () => {
    const base = { contact_id: C, customer: "+1", queue: "q", agent_id: ME };
    const leg = { id: "L2", role: "consult", peer: "sip:1002@x" };
    let pic = run([ev("contact.connected", base, 100), ev("leg.held", { contact_id: C }, 105), ev("leg.created", { contact_id: C, leg }, 105)]);
    expect(pic.contacts[C]?.consult).toEqual({ leg: "L2", peer: "sip:1002@x", agentId: null, answered: false });
    pic = run([ev("leg.answered", { contact_id: C, leg }, 108), ev("contact.conferenced", base, 110)], pic);
    expect(pic.contacts[C]).toMatchObject({ consult: { answered: true }, conference: true, heldSince: null, heldTotal: 5 });
    const after = run([ev("leg.ended", { contact_id: C, leg }, 120)], pic);
    expect(after.contacts[C]).toMatchObject({ consult: null, conference: false });
    // Leaving the conference: the customer and the consulted party go on without this agent.
    const left = run([ev("leg.ended", { contact_id: C, leg: { id: "L1", role: "agent", agent_id: ME } }, 121)], pic);
    expect(left.contacts).toEqual({});
  });
});

describe("recording, the way in and the agent's own part", () => {
  const base = { contact_id: C, customer: "+1", queue: "sales", agent_id: ME };

  it("follows the recording through a pause and back, and takes it from a snapshot", () => {
    let pic = run([ev("contact.connected", base, 100), ev("recording.started", base, 100)]);
    expect(pic.contacts[C]?.recording).toBe("recording");
    pic = run([ev("contact.recording", { ...base, action: "pause", state: "paused" }, 105)], pic);
    expect(pic.contacts[C]?.recording).toBe("paused");
    pic = run([ev("contact.recording", { ...base, action: "resume", state: "recording" }, 108), ev("recording.stopped", base, 120)], pic);
    expect(pic.contacts[C]?.recording).toBeNull();
    // A reload mid-call: the live contact says it is recorded (paused here).
    const live = [{ ...base, state: "connected", created_at: 10, recording: "paused", legs: [{ role: "agent", agent_id: ME, answered_at: 12 }] }];
    expect(seed(EMPTY, live, ME).contacts[C]).toMatchObject({ phase: "talking", recording: "paused" });
  });

  it("adds the agent's step to the way in when it answers", () => {
    const queued = [{ type: "flow", name: "demo-main", choices: [] }, { type: "queue", name: "sales" }];
    let pic = run([ev("contact.offered", { ...base, agent_id: null, agents: [ME], path: queued })]);
    expect(pic.contacts[C]?.path.map((s) => s.type)).toEqual(["flow", "queue"]);
    pic = run([ev("contact.connected", { ...base, path: [...queued, { type: "agent", name: ME }] })], pic);
    expect(pic.contacts[C]?.path.map((s) => s.type)).toEqual(["flow", "queue", "agent"]);
  });

  it("wraps up its own part after a consultative transfer while the contact goes on", () => {
    const leg = { id: "L2", role: "consult", peer: "sip:1002@x", agent_id: OTHER };
    let pic = run([ev("contact.connected", base, 100), ev("leg.created", { contact_id: C, leg }, 105), ev("leg.answered", { contact_id: C, leg }, 108)]);
    pic = run(
      [
        ev("leg.ended", { contact_id: C, leg: { id: "L1", role: "agent", agent_id: ME } }, 110),
        ev("contact.wrapup_started", { ...base, agent_id: ME, part: true, path: [{ type: "queue", name: "sales" }] }, 110),
        ev("contact.transferred", { ...base, agent_id: OTHER }, 110),
        ev("contact.connected", { ...base, agent_id: OTHER }, 111),
      ],
      pic,
    );
    expect(pic.contacts[C]).toMatchObject({ phase: "wrapup", part: true, wrapupAt: 110, consult: null });
    // The colleague's own wrap-up later is not this agent's.
    pic = run([ev("contact.wrapup_started", { ...base, agent_id: OTHER }, 150)], pic);
    expect(pic.contacts[C]?.wrapupAt).toBe(110);
    // After a reload: the live contact names this agent among those still wrapping up.
    const live = [{ ...base, agent_id: OTHER, state: "connected", created_at: 10, wrapping: [ME], legs: [{ role: "agent", agent_id: ME, answered_at: 12, ended_at: 110 }, { ...leg, answered_at: 108 }] }];
    expect(seed(EMPTY, live, ME).contacts[C]).toMatchObject({ phase: "wrapup", part: true, wrapupAt: 110, consult: null });
  });
});
