// The flow document (docs/ivr.md §1-2) as a graph and back, without React: each node's exits
// are its `outputs`, a menu's `options[].next` (exit `option:<key>`) and a branch's
// `conditions[].next` (exit `condition:<i>`). The document stays the one truth: the
// designer edits it and redraws.

export interface FlowNodeDoc {
  id: string;
  type: string;
  outputs?: Record<string, string>;
  options?: { key?: string; next?: string }[];
  conditions?: { when?: string; next?: string }[];
  [setting: string]: unknown;
}

export interface FlowDoc {
  format?: string;
  id?: string;
  name?: string;
  start?: string;
  nodes: FlowNodeDoc[];
  [field: string]: unknown;
}

/** The exits a node type has (menu and branch add one per option or condition). */
export const OUTPUTS: Record<string, string[]> = {
  play: ["next"],
  get_digits: ["success", "no_input", "invalid"],
  menu: ["no_input", "invalid"],
  set_variable: ["next"],
  branch: ["default"],
  check_hours: ["open", "closed", "holiday"],
  webhook: ["success", "error", "timeout"],
  set_language: ["next"],
  set_skills: ["next"],
  set_priority: ["next"],
  transfer_queue: [],
  transfer_agent: [],
  transfer_external: [],
  transfer_flow: ["error"],
  voicemail: [],
  offer_callback: ["scheduled", "declined", "failed"],
  hangup: [],
};

export const NODE_TYPES = Object.keys(OUTPUTS);

/** The smallest valid settings of a new node of each type. */
export function newNode(type: string, id: string): FlowNodeDoc {
  const prompt = { text: "…" };
  const base: Record<string, Partial<FlowNodeDoc>> = {
    play: { prompt },
    get_digits: { prompt },
    menu: { prompt, options: [{ key: "1" }] },
    set_variable: { assignments: [] },
    branch: { conditions: [] },
    check_hours: { schedule: "" },
    webhook: { url: "https://" },
    set_language: { language: "en-US" },
    set_skills: { skills: [] },
    set_priority: { priority: "0" },
    transfer_queue: { queue: "" },
    transfer_agent: { agent: "" },
    transfer_external: { number: "" },
    transfer_flow: { flow: "" },
    voicemail: { mailbox: "" },
    offer_callback: { prompt, queue: "" },
    hangup: {},
  };
  return { id, type, ...(base[type] ?? {}) };
}

export function exitsOf(node: FlowNodeDoc): string[] {
  const fixed = OUTPUTS[node.type] ?? Object.keys(node.outputs ?? {});
  if (node.type === "menu") return [...(node.options ?? []).map((o, i) => `option:${o.key ?? i}`), ...fixed];
  if (node.type === "branch") return [...(node.conditions ?? []).map((_, i) => `condition:${i}`), ...fixed];
  return [...fixed];
}

export function targetOf(node: FlowNodeDoc, exit: string): string | undefined {
  if (exit.startsWith("option:") && node.type === "menu") {
    const key = exit.slice(7);
    return (node.options ?? []).find((o, i) => (o.key ?? String(i)) === key)?.next;
  }
  if (exit.startsWith("condition:") && node.type === "branch") return (node.conditions ?? [])[Number(exit.slice(10))]?.next;
  return node.outputs?.[exit];
}

/** A new document with `exit` of node `from` leading to `to` (or nowhere with null). */
export function connect(doc: FlowDoc, from: string, exit: string, to: string | null): FlowDoc {
  return {
    ...doc,
    nodes: doc.nodes.map((n) => {
      if (n.id !== from) return n;
      if (exit.startsWith("option:") && n.type === "menu") {
        const key = exit.slice(7);
        return { ...n, options: (n.options ?? []).map((o, i) => ((o.key ?? String(i)) === key ? withNext(o, to) : o)) };
      }
      if (exit.startsWith("condition:") && n.type === "branch") {
        const at = Number(exit.slice(10));
        return { ...n, conditions: (n.conditions ?? []).map((c, i) => (i === at ? withNext(c, to) : c)) };
      }
      const outputs = { ...(n.outputs ?? {}) };
      if (to === null) delete outputs[exit];
      else outputs[exit] = to;
      const next: FlowNodeDoc = { ...n, outputs };
      if (Object.keys(outputs).length === 0) delete next.outputs;
      return next;
    }),
  };
}

function withNext<T extends { next?: string }>(item: T, to: string | null): T {
  const copy = { ...item };
  if (to === null) delete copy.next;
  else copy.next = to;
  return copy;
}

export interface Edge {
  id: string;
  source: string;
  sourceHandle: string;
  target: string;
  label: string;
}

export function edgesOf(doc: FlowDoc): Edge[] {
  const ids = new Set(doc.nodes.map((n) => n.id));
  const edges: Edge[] = [];
  for (const n of doc.nodes)
    for (const exit of exitsOf(n)) {
      const to = targetOf(n, exit);
      if (to && ids.has(to)) edges.push({ id: `${n.id}:${exit}`, source: n.id, sourceHandle: exit, target: to, label: exit });
    }
  return edges;
}

/** Columns by distance from the start (breadth first), rows in document order. */
export function layout(doc: FlowDoc): Record<string, { x: number; y: number }> {
  const depth = new Map<string, number>();
  const byId = new Map(doc.nodes.map((n) => [n.id, n]));
  const queue = [doc.start ?? doc.nodes[0]?.id].filter((x): x is string => !!x && byId.has(x));
  queue.forEach((id) => depth.set(id, 0));
  while (queue.length) {
    const id = queue.shift() as string;
    const n = byId.get(id);
    if (!n) continue;
    for (const exit of exitsOf(n)) {
      const to = targetOf(n, exit);
      if (to && byId.has(to) && !depth.has(to)) {
        depth.set(to, (depth.get(id) ?? 0) + 1);
        queue.push(to);
      }
    }
  }
  const maxDepth = Math.max(0, ...depth.values());
  const rows = new Map<number, number>();
  const out: Record<string, { x: number; y: number }> = {};
  for (const n of doc.nodes) {
    const d = depth.get(n.id) ?? maxDepth + 1;
    const r = rows.get(d) ?? 0;
    rows.set(d, r + 1);
    out[n.id] = { x: d * 260, y: r * 150 };
  }
  return out;
}
