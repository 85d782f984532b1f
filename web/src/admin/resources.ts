// One small description per resource of the API; ResourcePage draws the list (sorting,
// filters, pages) and the form from it. Labels come from the admin catalogue
// (`fields.<name>`, `resources.<key>`), so a description holds no words of its own.

export type FieldKind =
  | { type: "text"; multiline?: boolean }
  | { type: "secret" } // write-only: sent when typed, never shown
  | { type: "number"; min?: number; max?: number; step?: number }
  | { type: "bool" }
  | { type: "select"; options: string[] }
  | { type: "list" } // a list of strings, one per line
  | { type: "json"; shape?: "object" | "array" }; // nested settings the API documents (skills, overflow, dial plan)

export interface Field {
  name: string;
  kind: FieldKind;
  required?: boolean; // on create
  createOnly?: boolean; // the API refuses a change of it
  nullable?: boolean; // an empty value is sent as null (clears it)
  permission?: string; // shown only to a role with this permission too
}

export interface Filter {
  name: string; // the list's query parameter
  kind: "text" | "datetime";
}

export interface Resource {
  key: string;
  path: string; // /api/v1/...
  read: string; // permission to see it
  write?: string; // permission to change it; none: read-only
  deletable?: boolean;
  columns: string[];
  fields: Field[];
  filters?: Filter[];
  /** A list the API answers as a bare array rather than a page. */
  bare?: boolean;
  /** One object (GET and PATCH at `path`), not a list: a settings form, no list. */
  single?: boolean;
}

const text = { type: "text" } as const;
const num = (min?: number, max?: number) => ({ type: "number", min, max }) as const;
const bool = { type: "bool" } as const;
const json = { type: "json" } as const;
const jsonObject = { type: "json", shape: "object" } as const;
const select = (...options: string[]) => ({ type: "select", options }) as const;

export const RESOURCES: Resource[] = [
  {
    key: "agents",
    path: "/api/v1/agents",
    read: "agents:read",
    write: "agents:write",
    deletable: true,
    columns: ["name", "extension", "username", "role", "status"],
    fields: [
      { name: "name", kind: text, required: true },
      { name: "extension", kind: text, required: true },
      { name: "sip_password", kind: { type: "secret" }, required: true },
      { name: "skills", kind: jsonObject },
      { name: "username", kind: text, nullable: true },
      { name: "password", kind: { type: "secret" } },
      { name: "email", kind: text, nullable: true },
      { name: "role", kind: text },
      { name: "status", kind: select("active", "disabled") },
      { name: "device", kind: text, nullable: true, permission: "agents:device" },
    ],
  },
  {
    key: "users",
    path: "/api/v1/users",
    read: "users:read",
    write: "users:write",
    deletable: true,
    columns: ["username", "display_name", "role", "status"],
    fields: [
      { name: "username", kind: text, required: true, createOnly: true },
      { name: "password", kind: { type: "secret" }, required: true },
      { name: "display_name", kind: text },
      { name: "email", kind: text, nullable: true },
      { name: "role", kind: text },
      { name: "status", kind: select("active", "disabled") },
    ],
  },
  {
    key: "roles",
    path: "/api/v1/roles",
    read: "roles:read",
    write: "roles:write",
    deletable: true,
    columns: ["name", "description", "permissions"],
    fields: [
      { name: "name", kind: text, required: true },
      { name: "description", kind: text },
      { name: "permissions", kind: { type: "list" } },
    ],
  },
  {
    key: "queues",
    path: "/api/v1/queues",
    read: "queues:read",
    write: "queues:write",
    deletable: true,
    columns: ["name", "strategy", "priority", "required_skills", "max_wait_seconds", "music_on_hold"],
    fields: [
      { name: "name", kind: text, required: true },
      { name: "description", kind: text },
      { name: "strategy", kind: select("longest_idle", "most_skilled", "least_occupied", "round_robin", "ring_all", "preferred_agent") },
      { name: "required_skills", kind: jsonObject },
      { name: "priority", kind: num(1, 10) },
      { name: "ring_timeout_seconds", kind: num(1) },
      { name: "wrapup_seconds", kind: num(0) },
      { name: "max_wait_seconds", kind: num(0) },
      { name: "capacity", kind: num(0) },
      { name: "service_level_seconds", kind: num(1) },
      { name: "announce_position", kind: bool },
      { name: "announce_interval_seconds", kind: num(0) },
      { name: "music_on_hold", kind: text },
      { name: "overflow", kind: jsonObject },
    ],
  },
  {
    key: "numbers",
    path: "/api/v1/numbers",
    read: "numbers:read",
    write: "numbers:write",
    deletable: true,
    columns: ["number", "name", "target_type", "target", "trunk_id"],
    fields: [
      { name: "number", kind: text, required: true, createOnly: true },
      { name: "name", kind: text },
      { name: "target_type", kind: select("flow", "queue", "agent") },
      { name: "target", kind: text, required: true },
      { name: "trunk_id", kind: text, nullable: true },
    ],
  },
  {
    key: "trunks",
    path: "/api/v1/trunks",
    read: "trunks:read",
    write: "trunks:write",
    deletable: true,
    columns: ["name", "host", "transport", "registration_state", "channels_in_use", "max_channels"],
    fields: [
      { name: "name", kind: text, required: true },
      { name: "host", kind: text, required: true },
      { name: "port", kind: num(1, 65535) },
      { name: "transport", kind: select("udp", "tcp", "tls") },
      { name: "username", kind: text, nullable: true },
      { name: "password", kind: { type: "secret" } },
      { name: "allowed_ips", kind: { type: "list" } },
      { name: "registration", kind: bool },
      { name: "inbound_auth", kind: bool },
      { name: "max_channels", kind: num(0) },
      { name: "caller_id", kind: text, nullable: true },
      { name: "priority", kind: num(0) },
      { name: "outbound", kind: bool },
    ],
  },
  {
    key: "business-hours",
    path: "/api/v1/business-hours",
    read: "hours:read",
    write: "hours:write",
    deletable: true,
    columns: ["name", "timezone"],
    fields: [
      { name: "name", kind: text, required: true },
      { name: "timezone", kind: text },
      { name: "weekly", kind: json },
      { name: "holidays", kind: json },
    ],
  },
  {
    key: "reason-codes",
    path: "/api/v1/reason-codes",
    read: "agents:read",
    write: "agents:write",
    deletable: true,
    columns: ["code", "label", "cec_state", "max_seconds", "auto_ready"],
    fields: [
      { name: "code", kind: text, required: true, createOnly: true },
      { name: "label", kind: text },
      { name: "cec_state", kind: select("busy", "rest", "study") },
      { name: "max_seconds", kind: num(1, 86400), nullable: true },
      { name: "auto_ready", kind: bool },
    ],
  },
  {
    key: "disposition-codes",
    path: "/api/v1/disposition-codes",
    read: "agents:read",
    write: "agents:write",
    deletable: true,
    columns: ["code", "label"],
    fields: [
      { name: "code", kind: text, required: true, createOnly: true },
      { name: "label", kind: text },
    ],
  },
  {
    key: "api-keys",
    path: "/api/v1/api-keys",
    read: "apikeys:read",
    write: "apikeys:write",
    deletable: true,
    columns: ["name", "access_key", "role", "status", "last_used_at", "expires_at"],
    fields: [
      { name: "name", kind: text, required: true },
      { name: "role", kind: text },
      { name: "rate_limit_rps", kind: num(0), nullable: true },
      { name: "expires_at", kind: text, nullable: true },
    ],
  },
  {
    key: "webhooks",
    path: "/api/v1/webhooks",
    read: "events:tenant",
    write: "webhooks:write",
    deletable: true,
    columns: ["url", "event_types", "active", "description"],
    fields: [
      { name: "url", kind: text, required: true },
      { name: "event_types", kind: { type: "list" }, required: true },
      { name: "description", kind: text },
      { name: "active", kind: bool },
    ],
  },
  {
    // The tenant's own settings, nested ones (the dial plan) included; quotas are the
    // platform operator's (the API refuses them to a tenant admin), so they are not here.
    key: "tenant",
    path: "/api/v1/tenant",
    read: "tenant:read",
    write: "tenant:write",
    single: true,
    columns: [],
    fields: [
      { name: "name", kind: text },
      { name: "timezone", kind: text },
      { name: "recording_retention_days", kind: num(1, 3650) },
      { name: "srtp_policy", kind: select("off", "optional", "required") },
      { name: "sip_destinations", kind: { type: "list" } },
      { name: "dial_plan", kind: jsonObject },
    ],
  },
  {
    key: "contacts",
    path: "/api/v1/contacts",
    read: "calls:control",
    columns: ["created_at", "direction", "customer", "dialed", "queue", "agent_id", "state", "disposition", "talk_seconds"],
    fields: [],
    filters: [
      { name: "q", kind: "text" },
      { name: "agent_id", kind: "text" },
      { name: "queue", kind: "text" },
      { name: "disposition", kind: "text" },
      { name: "since", kind: "datetime" },
      { name: "until", kind: "datetime" },
    ],
  },
  {
    key: "recordings",
    path: "/api/v1/recordings",
    read: "recordings:read",
    columns: ["started_at", "contact_id", "agent_id", "duration_seconds", "channels", "state"],
    fields: [],
    filters: [
      { name: "contact_id", kind: "text" },
      { name: "agent_id", kind: "text" },
    ],
  },
  {
    key: "voicemail",
    path: "/api/v1/voicemail",
    read: "voicemail:read",
    columns: ["created_at", "caller", "owner_type", "owner_id", "duration_seconds", "read"],
    fields: [],
    filters: [{ name: "mailbox_id", kind: "text" }],
  },
  {
    key: "audit-log",
    path: "/api/v1/audit-log",
    read: "audit:read",
    columns: ["at", "actor_name", "action", "resource_type", "resource_id", "ip"],
    fields: [],
    filters: [
      { name: "q", kind: "text" },
      { name: "resource_type", kind: "text" },
      { name: "action", kind: "text" },
      { name: "since", kind: "datetime" },
      { name: "until", kind: "datetime" },
    ],
  },
];

/** The form's values from a row (or the empty form), as strings and booleans for the inputs. */
export function toForm(resource: Resource, row: Record<string, unknown> | null): Record<string, string | boolean> {
  const out: Record<string, string | boolean> = {};
  for (const f of resource.fields) {
    const v = row?.[f.name];
    if (f.kind.type === "bool") out[f.name] = Boolean(v ?? false);
    else if (f.kind.type === "secret") out[f.name] = "";
    else if (f.kind.type === "json") out[f.name] = v === undefined || v === null ? "" : JSON.stringify(v, null, 2);
    else if (f.kind.type === "list") out[f.name] = Array.isArray(v) ? v.join("\n") : "";
    else out[f.name] = v === undefined || v === null ? "" : String(v);
  }
  return out;
}

/** What is wrong with a JSON field's text (a catalogue key and its values), or null: checked as
 * it is typed and again before sending; the API's own schema errors come back at the field. */
export function jsonProblem(kind: FieldKind, text: string): { key: string; detail?: string } | null {
  if (kind.type !== "json" || text.trim() === "") return null;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    return { key: "form.badJson", detail: e instanceof Error ? e.message : String(e) };
  }
  if (kind.shape === "object" && (typeof value !== "object" || value === null || Array.isArray(value))) return { key: "form.jsonObject" };
  if (kind.shape === "array" && !Array.isArray(value)) return { key: "form.jsonArray" };
  return null;
}

export class FormError extends Error {
  constructor(
    readonly field: string,
    readonly key: string,
    readonly detail?: string,
  ) {
    super(key);
  }
}

/**
 * The request body from the form: on create every field typed, on change only the fields
 * that differ from the row (PATCH changes only what is sent). Empty optional fields are left
 * out, or sent as null where the API clears them. Bad JSON is a FormError at its field.
 */
export function toBody(
  resource: Resource,
  values: Record<string, string | boolean>,
  row: Record<string, unknown> | null,
  allowed: (field: Field) => boolean = () => true,
): Record<string, unknown> {
  const before = row ? toForm(resource, row) : null;
  const body: Record<string, unknown> = {};
  for (const f of resource.fields) {
    if (!allowed(f)) continue;
    if (row && f.createOnly) continue;
    const v = values[f.name];
    if (before && v === before[f.name]) continue;
    if (f.kind.type === "bool") {
      body[f.name] = Boolean(v);
      continue;
    }
    const s = String(v ?? "").trim();
    if (s === "") {
      if (f.nullable && row) body[f.name] = null;
      continue;
    }
    if (f.kind.type === "number") body[f.name] = Number(s);
    else if (f.kind.type === "list")
      body[f.name] = s
        .split(/[\n,]/)
        .map((x) => x.trim())
        .filter(Boolean);
    else if (f.kind.type === "json") {
      const problem = jsonProblem(f.kind, s);
      if (problem) throw new FormError(f.name, problem.key, problem.detail);
      body[f.name] = JSON.parse(s);
    } else body[f.name] = s;
  }
  return body;
}
