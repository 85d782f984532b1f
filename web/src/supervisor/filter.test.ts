import { describe, expect, it } from "vitest";
import { filterFloor, serves, skillsOf } from "./filter";
import type { AgentRow, Floor, LiveRow, QueueRow } from "./useFloor";

const queue = (id: string, required_skills: Record<string, number>): QueueRow => ({
  id,
  name: id,
  waiting: 0,
  longest_wait: 0,
  service_level: null,
  abandon_rate: null,
  staffed: 0,
  agents_by_state: {},
  required_skills,
});
const agent = (id: string, skills: Record<string, number>): AgentRow => ({ id, name: id, extension: id, state: "idle", reason: null, since: 0, contacts: 0, skills });
const contact = (id: string, q: string | null): LiveRow => ({ contact_id: id, customer: null, queue: q, state: "queued", agent_id: null, created_at: "", monitored: false });

const floor: Floor = {
  queues: [queue("sales", { sales: 3 }), queue("support", { support: 1 })],
  agents: [agent("ann", { sales: 5, support: 2 }), agent("bob", { sales: 2 }), agent("cy", { support: 9 })],
  contacts: [contact("c1", "sales"), contact("c2", "support"), contact("c3", null)],
  byState: {},
  waitingSeries: [],
};
const ids = (rows: { id?: string; contact_id?: string }[]) => rows.map((r) => r.id ?? r.contact_id);

describe("wallboard filters", () => {
  it("an agent serves a queue when every required skill is at its level", () => {
    expect(serves(agent("a", { sales: 3 }), queue("q", { sales: 3 }))).toBe(true);
    expect(serves(agent("a", { sales: 2 }), queue("q", { sales: 3 }))).toBe(false);
    expect(serves(agent("a", {}), queue("q", {}))).toBe(true);
  });

  it("show everything without a choice", () => {
    const f = filterFloor(floor, { queues: [], skills: [] });
    expect(ids(f.queues)).toEqual(["sales", "support"]);
    expect(ids(f.agents)).toEqual(["ann", "bob", "cy"]);
    expect(ids(f.contacts)).toEqual(["c1", "c2", "c3"]);
  });

  it("by queue: the queue, the agents who serve it, its contacts", () => {
    const f = filterFloor(floor, { queues: ["sales"], skills: [] });
    expect(ids(f.queues)).toEqual(["sales"]);
    expect(ids(f.agents)).toEqual(["ann"]);
    expect(ids(f.contacts)).toEqual(["c1"]);
  });

  it("by skill: the agents with it, the queues that require it, their contacts", () => {
    const f = filterFloor(floor, { queues: [], skills: ["support"] });
    expect(ids(f.queues)).toEqual(["support"]);
    expect(ids(f.agents)).toEqual(["ann", "cy"]);
    expect(ids(f.contacts)).toEqual(["c2"]);
    expect(skillsOf(floor)).toEqual(["sales", "support"]);
  });
});
