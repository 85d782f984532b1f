// The wallboard's filters. The model has no teams: agents are grouped by what they can serve,
// so the floor is filtered by queue (the queues, the agents whose skills meet a chosen
// queue's required skills, the contacts in it) and by skill (the agents with it, the queues
// that require it, their contacts). An empty choice shows everything.
import type { AgentRow, Floor, LiveRow, QueueRow } from "./useFloor";

export interface FloorFilter {
  queues: string[]; // queue ids
  skills: string[];
}

/** Whether the agent has every skill the queue requires, each at its minimum level. */
export function serves(agent: Pick<AgentRow, "skills">, queue: Pick<QueueRow, "required_skills">): boolean {
  return Object.entries(queue.required_skills).every(([skill, level]) => (agent.skills[skill] ?? 0) >= level);
}

/** Every skill named by an agent or a queue, sorted. */
export function skillsOf(floor: Pick<Floor, "agents" | "queues">): string[] {
  const all = new Set<string>();
  floor.agents.forEach((a) => Object.keys(a.skills).forEach((s) => all.add(s)));
  floor.queues.forEach((q) => Object.keys(q.required_skills).forEach((s) => all.add(s)));
  return [...all].sort();
}

export function filterFloor(floor: Floor, f: FloorFilter): { queues: QueueRow[]; agents: AgentRow[]; contacts: LiveRow[] } {
  const bySkill = (skills: Record<string, number>) => f.skills.length === 0 || f.skills.some((s) => s in skills);
  const queues = floor.queues.filter((q) => (f.queues.length === 0 || f.queues.includes(q.id)) && bySkill(q.required_skills));
  const chosen = floor.queues.filter((q) => f.queues.includes(q.id));
  const agents = floor.agents.filter((a) => (f.queues.length === 0 || chosen.some((q) => serves(a, q))) && bySkill(a.skills));
  const filtered = f.queues.length > 0 || f.skills.length > 0;
  const shownQueues = new Set(queues.flatMap((q) => [q.id, q.name]));
  const contacts = floor.contacts.filter((c) => !filtered || (c.queue !== null && shownQueues.has(c.queue)));
  return { queues, agents, contacts };
}
